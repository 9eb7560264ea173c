"""NICs on a host bridge and on macvtap (direct) on the real daemon: a running guest gets them,
a new one is hot-plugged, a NIC moved from a bridge to a libvirt network keeps its MAC, and a
missing bridge is a plan error for a guest that will run."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def links(env):
    bridge, veth = f"{env.prefix}b", f"{env.prefix}v"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{env.prefix}p"], check=True)
    for link in (bridge, veth, f"{env.prefix}p"):
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
    yield bridge, veth
    for link in (bridge, veth):
        subprocess.run(["ip", "link", "del", link], check=False)


def test_bridge_and_macvtap_nics(env, links):
    bridge, veth = links
    net = BASE.split("---\n")[1]                       # the isolated test network
    path = env.write(small_guest("P-nics", f"""\
  interfaces:
    - {{bridge: {bridge}, mac: "52:54:00:b1:00:01"}}
    - {{direct: {{dev: {veth}, mode: bridge}}, mac: "52:54:00:b1:00:02"}}
""").replace("---\nkind: Guest", "---\n" + net + "---\nkind: Guest", 1))
    env.converge()
    live = env.lookup("nics").XMLDesc(0)
    assert f"<source bridge='{bridge}'/>" in live and f"<source dev='{veth}' mode='bridge'/>" in live
    text = path.read_text().replace(f"{{bridge: {bridge}, mac", f"{{network: {env.name('net')}, mac")
    path.write_text(text + f'    - {{bridge: {bridge}, mac: "52:54:00:b1:00:03"}}\n')
    code, doc = env.plan()
    impacts = {c["path"]: c["impact"] for c in doc["changes"][-1]["changes"]}
    assert impacts == {"interfaces[0].network": "restart", "interfaces[2]": "live"}, impacts   # hot-plugged
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    live = env.lookup("nics").XMLDesc(0)
    first = live.split("<interface ")[1]
    assert first.startswith("type='network'") and "52:54:00:b1:00:01" in first
    assert live.count(f"<source bridge='{bridge}'/>") == 1 and "52:54:00:b1:00:03" in live

    subprocess.run(["ip", "link", "del", bridge], check=True)
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1 and f"spec.interfaces.2.bridge: '{bridge}' does not exist" in done.stderr, done.stderr


def test_link_state_changes_live_and_is_runtime_drift(env):
    net = BASE.split("---\n")[1]
    path = env.write(small_guest("P-link", f"""\
  interfaces: [{{network: {env.name('net')}, mac: "52:54:00:b2:00:01", queues: 2, mtu: 1400}}]
""").replace("---\nkind: Guest", "---\n" + net + "---\nkind: Guest", 1))
    env.converge()
    live = env.lookup("link").XMLDesc(0)
    assert "<driver queues='2'/>" in live and "<mtu size='1400'/>" in live
    path.write_text(path.read_text().replace("mtu: 1400}", "mtu: 1400, link: down}"))
    code, doc = env.plan()
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    assert {c["path"]: c["impact"] for c in guest["changes"]} == {"interfaces[0].link": "live"}
    env.converge()                                           # no --restart: made live
    assert "<link state='down'/>" in env.lookup("link").XMLDesc(0)
    dom = env.conn.lookupByName(env.name("link"))
    dom.updateDeviceFlags("<interface type='network'><mac address='52:54:00:b2:00:01'/>"
                          f"<source network='{env.name('net')}'/><model type='virtio'/><driver queues='2'/><mtu size='1400'/>"
                          "<link state='up'/>"
                          "</interface>", 1)              # up again, live only (virsh domif-setlink)
    done = env.run("drift", str(env.dir), "--json")

    found = [f for f in json.loads(done.stdout)["findings"] if f["class"] == "runtime"]
    assert done.returncode == 2 and found[0]["changes"] == [
        {"path": "interfaces[0].link (running)", "before": "up", "after": "down"}], found
    assert env.run("drift", str(env.dir), "--repair").returncode == 0
    assert "<link state='down'/>" in env.lookup("link").XMLDesc(0)
