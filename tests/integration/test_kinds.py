"""Every network forward mode, volume format and autostart on the real daemon."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def host_bridge(env):
    """A host bridge made for the test (forward: bridge only references one)."""
    name = f"{env.prefix}-hb"
    subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], check=True)
    yield name
    subprocess.run(["ip", "link", "del", name], check=False)


def test_every_forward_mode_volume_format_and_autostart(env, host_bridge):
    third = env.ip(0).rsplit(".", 2)[0]      # e.g. "10.231": four /24s next to the free one
    octet = int(env.ip(0).split(".")[2])
    nets = {mode: f"{third}.{(octet + n) % 256}" for n, mode in enumerate(("nat", "route", "open"), start=1)}
    text = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system", instance: P-i}\n'
    for mode, base in nets.items():
        text += (f"---\nkind: Network\nmetadata: {{name: P-{mode}}}\n"
                 f"spec: {{forward: {mode}, ipv4: {{address: {base}.1/24}}, autostart: true}}\n")
    text += f"---\nkind: Network\nmetadata: {{name: P-lan}}\nspec: {{forward: bridge, bridge: {host_bridge}}}\n"
    text += ("---\nkind: StoragePool\nmetadata: {name: P-pool}\nspec: {path: /var/lib/libvirt/images/P-pool}\n"
             "---\nkind: Volume\nmetadata: {name: P-a.img}\nspec: {pool: P-pool, capacity: 8MiB, format: raw}\n"
             "---\nkind: Volume\nmetadata: {name: P-b.qcow2}\nspec: {pool: P-pool, capacity: 8MiB}\n")
    env.write(text)
    env.converge()
    for mode in ("nat", "route", "open"):
        net = env.conn.networkLookupByName(env.name(mode))
        assert net.isActive() and net.autostart() == 1
        assert f"<forward mode='{mode}'" in net.XMLDesc(0)
        assert net.bridgeName().startswith("virbr")     # libvirt's choice, kept on later applies
    lan = env.conn.networkLookupByName(env.name("lan"))
    assert lan.isActive() and f"<bridge name='{host_bridge}'/>" in lan.XMLDesc(0)
    pool = env.conn.storagePoolLookupByName(env.name("pool"))
    assert pool.isActive() and pool.autostart() == 1
    formats = {v.name(): v.XMLDesc(0).split("<format type='")[1].split("'")[0] for v in pool.listAllVolumes(0)}
    assert formats == {env.name("a.img"): "raw", env.name("b.qcow2"): "qcow2"}
    net = env.conn.networkLookupByName(env.name("nat"))
    net.setAutostart(0)                                  # someone turns autostart off by hand
    code, doc = env.plan()
    assert code == 2 and [c["changes"] for c in doc["changes"]] == [
        [{"path": "autostart", "before": False, "after": True, "impact": "live"}]]
    env.converge()
    assert env.conn.networkLookupByName(env.name("nat")).autostart() == 1


def test_every_field_converges_on_the_real_daemon(env, host_bridge):
    """The 'wide' manifests (every field at least once) apply, then plan and drift find nothing."""
    import re

    from tests.helpers import DATA
    text = (DATA / "manifests" / "wide" / "all.yaml").read_text()
    octets = env.ip(0).split(".")
    nets = [f"{octets[0]}.{octets[1]}.{(int(octets[2]) + n) % 256}" for n in range(3)]
    for old, new in (("192.168.213", nets[0]), ("10.214.0", nets[1]), ("10.215.0", nets[2]),
                     ("vrbr-iso", f"{env.prefix}ib"), ("bridge: br0", f"bridge: {host_bridge}"),
                     ("/var/lib/libvirt/images/wide/", f"/var/lib/libvirt/images/{env.prefix}-wide/"),
                     ("/var/lib/libvirt/images/other.qcow2", f"/var/lib/libvirt/images/{env.prefix}-other.qcow2"),
                     ('spec: {uri: "qemu:///system", network_config: ifupdown}',
                      'spec: {uri: "qemu:///system", instance: P-i}')):      # runtime: no files in /etc
        assert old in text, old
        text = text.replace(old, new)
    text = re.sub(r"\b(name|network|pool|secret_usage|secret): (iso-net|routed|open-net|lan|natted|macvtap|wbr|images|wide|uefi|desk|numa|ceph-client|vtpm-key)\b", r"\1: P-\2", text)
    text = text.replace("volume: images/raw.img", "volume: P-images/raw.img").replace("backing: images/", "backing: P-images/")
    text = text.replace("clone: images/", "clone: P-images/").replace("volume: images/sealed", "volume: P-images/sealed")
    env.write(text)
    env.converge()
    dom = env.lookup("wide")
    assert not dom.isActive() and dom.autostart() == 1
    done = env.run("drift", str(env.dir))
    mine = [line for line in done.stdout.splitlines() if env.prefix in line and " unmanaged: " not in line]
    assert done.returncode == 0 and mine == [], done.stdout
