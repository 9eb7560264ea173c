"""Host bridges (the Bridge kind) for real: made through netlink and kept by ifupdown, back after
a "reboot" (the bridge deleted, then `ifup`), a running guest plugged into it, adopted back,
pruned with its file; and a bridge that takes the interface carrying the connection to the host
(run in a network namespace of its own whose default gateway answers pings) applied only with
--allow-disruptive, and rolled back when the host stops answering."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

HOST = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system", instance: P-i, network_config: ifupdown}\n'


def _ip(*args: str, netns: str | None = None) -> str:
    command = (["ip", "netns", "exec", netns] if netns else []) + ["ip", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _link(name: str, netns: str | None = None) -> dict:
    return json.loads(_ip("-json", "-details", "link", "show", name, netns=netns))[0]


@pytest.fixture
def port(env):
    near, far = f"{env.prefix}p", f"{env.prefix}q"
    subprocess.run(["ip", "link", "add", near, "type", "veth", "peer", "name", far], check=True)
    try:
        yield near
    finally:
        subprocess.run(["ip", "link", "del", near], check=False)


def test_bridge_made_kept_by_ifupdown_and_a_guest_on_it(env, port):
    name = env.name("br")
    conf = Path(f"/etc/network/interfaces.d/vr-{name}")
    bridge = f"""---
kind: Bridge
metadata: {{name: P-br}}
spec: {{ports: [{port}], stp: true, forward_delay: 4, mtu: 1400, addresses: [SUBNET.1/24]}}
"""
    env.write(HOST + bridge)
    env.converge()
    link = _link(name)
    assert link["linkinfo"]["info_kind"] == "bridge" and link["mtu"] == 1400
    assert link["linkinfo"]["info_data"]["stp_state"] == 1 and link["linkinfo"]["info_data"]["forward_delay"] == 400
    assert _link(port)["master"] == name
    assert f"{env.ip(1)}/24" in _ip("-o", "addr", "show", name)
    text = conf.read_text()
    assert text.startswith("# managed by virt-reconcile") and f"bridge_ports {port}" in text, text

    # a reboot: the bridge is gone, ifupdown makes it again from the file, and nothing differs
    subprocess.run(["ip", "link", "del", name], check=True)
    Path("/run/network").mkdir(exist_ok=True)
    subprocess.run(["ifup", "-i", str(conf), "--state-dir", f"/run/network/{env.prefix}", name],
                   capture_output=True, text=True)
    assert _link(port)["master"] == name
    code, doc = env.plan()
    assert code == 0, doc

    # a running guest on it: the plan makes the bridge first
    env.write(small_guest("P-g", "  interfaces:\n    - {bridge: P-br}\n").replace(
        'instance: P-i}', 'instance: P-i, network_config: ifupdown}')
        + bridge)
    env.converge()
    dom = env.lookup("g")
    tap = dom.XMLDesc(0).split("<target dev='")[1].split("'")[0]
    assert dom.isActive() and _link(tap)["master"] == name

    # adopt writes it back
    assert env.run("forget", f"Bridge/{name}", str(env.dir)).returncode == 0
    env.write(small_guest("P-g", "  interfaces:\n    - {bridge: P-br}\n").replace(
        'instance: P-i}', 'instance: P-i, network_config: ifupdown}'))
    done = env.run("adopt", f"Bridge/{name}", str(env.dir))
    assert done.returncode == 0, done.stdout + done.stderr
    adopted = next(env.dir.glob("bridge-*.yaml")).read_text()
    assert f"ports: [{port}]" in adopted and "stp: true" in adopted and "forward_delay: 4" in adopted, adopted
    code, doc = env.plan()
    assert code == 0, doc

    # pruned: the bridge and its file go, the port is free again
    env.write(HOST + "---\nkind: Network\nmetadata: {name: P-n}\nspec: {forward: isolated, autostart: false}\n")
    next(env.dir.glob("bridge-*.yaml")).unlink()
    done = env.apply("--prune", "--allow-destroy", "--force-stop", "--shutdown-timeout", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not conf.exists() and "master" not in _link(port), done.stdout
    assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0


@pytest.fixture
def netns(env):
    """A network namespace whose uplink `up0` has 10.252.0.2/24 and a default route through
    10.252.0.1: the far end of a veth in the main namespace, which answers pings."""
    ns, far = f"{env.prefix}ns", f"{env.prefix}g"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", far, "type", "veth", "peer", "name", "up0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", "10.252.0.1/24", "dev", far], check=True)
        subprocess.run(["ip", "link", "set", far, "up"], check=True)
        for args in (["link", "set", "lo", "up"], ["link", "set", "up0", "up"], ["addr", "add", "10.252.0.2/24", "dev", "up0"],
                     ["route", "add", "default", "via", "10.252.0.1"]):
            _ip(*args, netns=ns)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", far], check=False)


def _run_in(ns: str, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "reconciler", *args],
                          capture_output=True, text=True, timeout=600)


def test_a_bridge_taking_the_management_link_is_guarded_and_rolled_back(env, netns):
    host = HOST.replace("network_config: ifupdown", "network_config: runtime")
    bridge = "---\nkind: Bridge\nmetadata: {name: P-mg}\nspec: {ports: [up0], addresses: [ADDR], gateway: 10.252.0.1}\n"
    env.write(host + bridge.replace("ADDR", "10.252.0.2/24"))
    done = _run_in(netns, env, "plan", str(env.dir))
    assert "impact: disruptive" in done.stdout and "rolls it back" in done.stdout, done.stdout + done.stderr
    done = _run_in(netns, env, "apply", str(env.dir), "--auto-approve")
    assert done.returncode == 1 and "--allow-disruptive" in done.stdout, done.stdout
    assert _link("up0", netns).get("master") is None                  # nothing was done

    done = _run_in(netns, env, "apply", str(env.dir), "--auto-approve", "--allow-disruptive", "--rollback-timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    name = env.name("mg")
    assert _link("up0", netns)["master"] == name
    assert "10.252.0.2/24" in _ip("-o", "addr", "show", name, netns=netns)
    assert f"default via 10.252.0.1 dev {name}" in _ip("route", netns=netns)
    done = _run_in(netns, env, "plan", str(env.dir))
    assert done.returncode == 0, done.stdout

    # an address on another subnet cuts the host off: the change is undone
    env.write(host + bridge.replace("ADDR", "10.253.0.2/24").replace("gateway: 10.252.0.1", "gateway: 10.253.0.1"))
    done = _run_in(netns, env, "apply", str(env.dir), "--auto-approve", "--allow-disruptive", "--rollback-timeout", "3")
    assert done.returncode == 1 and "rolled back" in done.stdout, done.stdout + done.stderr
    assert "10.252.0.2/24" in _ip("-o", "addr", "show", name, netns=netns)
    assert f"default via 10.252.0.1 dev {name}" in _ip("route", netns=netns)
    env.write(host + bridge.replace("ADDR", "10.252.0.2/24"))       # as before: only its record is refreshed
    done = _run_in(netns, env, "plan", str(env.dir), "--json")
    (change,) = json.loads(done.stdout)["changes"]
    assert [c["path"] for c in change["changes"]] == ["owner.hash"], change
    assert _run_in(netns, env, "apply", str(env.dir), "--auto-approve").returncode == 0
    done = _run_in(netns, env, "plan", str(env.dir))
    assert done.returncode == 0, done.stdout


def test_ip_commands_read_and_change_links_as_netlink_does(env, port):
    """The `ip` path (what a qemu+ssh host gets, here with no ssh in front) makes the same bridge
    and reads it back as netlink does."""
    from reconciler import bridgeops, hostlinks
    name = env.name("ic")
    ip, netlink = hostlinks.IpCommands([]), hostlinks.Netlink()
    try:
        bridgeops.converge(ip, {"name": name, "ports": [port], "stp": True, "forward_delay": 5, "mtu": 1400,
                                 "addresses": ["10.254.0.1/24"]})
        by_ip, by_netlink = ip.read(), netlink.read()
        assert by_ip[name] == by_netlink[name] and by_ip[port] == by_netlink[port], (by_ip[name], by_netlink[name])
        assert by_ip[name].stp and by_ip[name].forward_delay == 5 and by_ip[port].master == name
        bridgeops.release(ip, name)
        assert name not in netlink.read() and netlink.read()[port].master is None
    finally:
        netlink.close()


def test_a_bridge_over_ssh(env, port, sshd):
    """A qemu+ssh:// host (this machine through a local sshd): its bridges are read and made with
    `ip` over the same ssh target, and its ifupdown file written through it."""
    ssh_port, key = sshd
    uri = f"qemu+ssh://root@127.0.0.1:{ssh_port}/system?keyfile={key}&no_verify=1"
    name = env.name("sb")
    conf = Path(f"/etc/network/interfaces.d/vr-{name}")
    host = HOST.replace('uri: "qemu:///system"', f'uri: "{uri}"')
    env.write(host + f"---\nkind: Bridge\nmetadata: {{name: P-sb}}\nspec: {{ports: [{port}], stp: true, forward_delay: 3}}\n")
    env.converge()
    assert _link(port)["master"] == name and _link(name)["linkinfo"]["info_data"]["forward_delay"] == 300
    assert conf.read_text().startswith("# managed by virt-reconcile") and f"bridge_ports {port}" in conf.read_text()
    conf.write_text(conf.read_text() + "    bridge_maxage 12\n")        # edited by hand on the host: drift
    code, doc = env.plan()
    assert code == 2 and [c["path"] for c in doc["changes"][0]["changes"]] == ["persisted"], doc
    env.converge()
    env.write(host + "---\nkind: Network\nmetadata: {name: P-n}\nspec: {forward: isolated, autostart: false}\n")
    done = env.apply("--prune", "--allow-destroy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not conf.exists() and subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0
