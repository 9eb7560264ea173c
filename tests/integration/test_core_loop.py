"""The core loop on the real libvirtd: create, converge, change in place, keep identity."""
from __future__ import annotations

import json
import subprocess

import libvirt
import pytest

from reconciler import fields, ownership
from reconciler.identity import OWNER_NS, object_uuid
from tests.integration.conftest import IMAGES, restart_libvirtd

pytestmark = pytest.mark.libvirtd

BASE = """\
kind: Host
metadata: {name: local}
spec: {uri: "qemu:///system", instance: P-i}
---
kind: Network
metadata: {name: P-net}
spec:
  forward: isolated
  bridge: P-br
  ipv4:
    address: SUBNET.1/24
    dhcp:
      range: [SUBNET.100, SUBNET.150]
      hosts: [{name: vm, mac: "52:54:00:5e:00:01", ip: SUBNET.11}]
  autostart: false
---
kind: StoragePool
metadata: {name: P-pool}
spec: {path: /var/lib/libvirt/images/P-pool, autostart: false}
---
kind: Volume
metadata: {name: P-root.qcow2}
spec: {pool: P-pool, capacity: 64MiB, format: qcow2}
---
kind: Volume
metadata: {name: P-data.qcow2}
spec: {pool: P-pool, capacity: 32MiB}
---
kind: Guest
metadata: {name: P-vm}
spec:
  state: running
  vcpus: {current: 1, max: 2}
  memory: {current: 128MiB, max: 256MiB}
  boot: [hd]
  disks:
    - {volume: P-pool/P-root.qcow2}
    - {device: cdrom}
  interfaces: [{network: P-net}]
  graphics: {type: vnc, listen: 127.0.0.1}
"""


def small_guest(name: str, spec: str) -> str:
    """The Host of BASE and a small running TCG guest `name` with `spec` (YAML lines, two spaces in)."""
    return BASE.split("---\n")[0] + (f"---\nkind: Guest\nmetadata: {{name: {name}}}\nspec:\n  state: running\n"
                                     "  type: qemu\n  vcpus: 1\n  memory: 128MiB\n  console: false\n") + spec


def changes(doc):
    return {(c["kind"], c["name"].split("-", 1)[-1]): c for c in doc["changes"]}


def impacts(change):
    return {c["path"]: c["impact"] for c in change["changes"]}


def test_apply_creates_in_order_then_second_plan_is_empty(env):
    env.write(BASE)
    code, doc = env.plan()
    assert code == 2
    assert [(c["kind"], c["action"]) for c in doc["changes"]] == [
        ("Network", "create"), ("StoragePool", "create"), ("Volume", "create"), ("Volume", "create"),
        ("Guest", "create")]
    env.converge()
    dom = env.lookup("vm")
    assert dom.isActive()
    assert dom.UUIDString() == object_uuid(env.name("i"), "Guest", env.name("vm"))
    saved = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert ownership.owner_hash(saved) and OWNER_NS in saved
    net = env.conn.networkLookupByName(env.name("net"))
    assert ownership.owner_hash(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    assert env.conn.storagePoolLookupByName(env.name("pool")).UUIDString() == object_uuid(env.name("i"), "StoragePool", env.name("pool"))


def test_plan_stays_empty_after_the_daemon_restarts(env):
    env.write(BASE)
    env.converge()
    restart_libvirtd()
    code, doc = env.plan()
    assert code == 0, doc
    assert env.lookup("vm").isActive()


def test_live_changes_apply_without_restart_and_keep_identity(env):
    path = env.write(BASE)
    env.converge()
    dom = env.lookup("vm")
    uuid, mac = dom.UUIDString(), fields.parse(dom.XMLDesc(0)).xpath("string(devices/interface/mac/@address)")
    media = IMAGES / f"{env.prefix}-media.iso"      # where QEMU's user may read it
    media.write_bytes(b"\0" * 4096)
    text = path.read_text()
    text = text.replace("current: 1, max: 2", "current: 2, max: 2").replace("current: 128MiB", "current: 192MiB")
    text = text.replace("    - {device: cdrom}", f"    - {{device: cdrom, path: {media}}}\n"
                        f"    - {{volume: {env.name('pool')}/{env.name('data.qcow2')}}}")
    text = text.replace("state: running", "state: running\n  autostart: true")
    path.write_text(text)
    code, doc = env.plan()
    guest = changes(doc)[("Guest", "vm")]
    assert code == 2 and guest["impact"] == "live"
    assert impacts(guest) == {"vcpus.current": "live", "memory.current": "live", "disks[1].path": "live",
                              "disks[2]": "live", "autostart": "live"}
    env.converge()
    dom = env.lookup("vm")
    running = fields.read("Guest", dom.XMLDesc(0))
    assert running["vcpus"]["current"] == 2
    assert set(running["disks"]) == {"vda", "vdb", "sda"} and running["disks"]["sda"]["path"] == str(media)
    assert dom.autostart() == 1
    assert dom.UUIDString() == uuid
    assert fields.parse(dom.XMLDesc(0)).xpath("string(devices/interface/mac/@address)") == mac


def test_restart_changes_wait_for_restart(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("max: 256MiB", "max: 384MiB"))
    code, doc = env.plan()
    assert impacts(changes(doc)[("Guest", "vm")]) == {"memory.max": "restart"}
    done = env.apply()
    assert done.returncode == 0 and "restart pending" in done.stdout
    assert env.lookup("vm").maxMemory() == 256 * 1024        # the running guest is untouched
    code, doc = env.plan()
    pending = changes(doc)[("Guest", "vm")]
    assert code == 2 and pending["action"] == "restart" and pending["impact"] == "restart"
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    assert env.lookup("vm").isActive() and env.lookup("vm").maxMemory() == 384 * 1024


def test_network_dhcp_hosts_change_live_and_mtu_restarts_it(env):
    path = env.write(BASE)
    env.converge()
    net_uuid = env.conn.networkLookupByName(env.name("net")).UUIDString()
    path.write_text(path.read_text().replace(
        'hosts: [{name: vm, mac: "52:54:00:5e:00:01", ip: SUBNET.11}]'.replace("SUBNET.", env.ip(0)[:-1]),
        f'hosts: [{{name: vm, mac: "52:54:00:5e:00:01", ip: {env.ip(12)}}}, '
        f'{{name: other, mac: "52:54:00:5e:00:02", ip: {env.ip(13)}}}]'))
    code, doc = env.plan()
    net = changes(doc)[("Network", "net")]
    assert net["impact"] == "live" and set(impacts(net)) == {
        "ipv4.dhcp.hosts[0].ip", "ipv4.dhcp.hosts[1]"}
    env.converge()
    live_xml = env.conn.networkLookupByName(env.name("net")).XMLDesc(0)   # running network has them now
    assert env.ip(13) in live_xml and env.ip(12) in live_xml
    path.write_text(path.read_text().replace("  autostart: false\n---\nkind: StoragePool",
                                             "  mtu: 1400\n  autostart: false\n---\nkind: StoragePool", 1))
    code, doc = env.plan()
    assert changes(doc)[("Network", "net")]["impact"] == "disruptive"
    env.converge()
    net = env.conn.networkLookupByName(env.name("net"))
    assert net.isActive() and "<mtu size='1400'/>" in net.XMLDesc(0) and net.UUIDString() == net_uuid
    tap = fields.parse(env.lookup("vm").XMLDesc(0)).xpath("string(devices/interface/target/@dev)")
    ports = json.loads(subprocess.run(["ip", "-j", "link", "show", "master", net.bridgeName()],
                                      capture_output=True, text=True, check=True).stdout)
    assert tap in {p["ifname"] for p in ports}         # the running guest's NIC was re-plugged


def test_volume_grows_live_and_shrinking_needs_allow_destroy(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("capacity: 32MiB", "capacity: 48MiB"))
    env.converge()
    vol = env.conn.storagePoolLookupByName(env.name("pool")).storageVolLookupByName(env.name("data.qcow2"))
    assert vol.info()[1] == 48 * 1024**2
    path.write_text(path.read_text().replace("capacity: 48MiB", "capacity: 16MiB"))
    code, doc = env.plan()
    assert changes(doc)[("Volume", "pool/" + env.name("data.qcow2"))]["impact"] == "destructive"
    done = env.apply()
    assert done.returncode == 1 and "--allow-destroy" in done.stdout
    assert vol.info()[1] == 48 * 1024**2
    env.converge("--allow-destroy")
    assert vol.info()[1] == 16 * 1024**2


def test_shutoff_guest_is_defined_not_started_then_started(env):
    path = env.write(BASE.replace("state: running", "state: shutoff"))
    env.converge()
    assert not env.lookup("vm").isActive()
    path.write_text(path.read_text().replace("state: shutoff", "state: running"))
    code, doc = env.plan()
    assert changes(doc)[("Guest", "vm")]["action"] == "start"
    env.converge()
    assert env.lookup("vm").isActive()
    path.write_text(path.read_text().replace("state: running", "state: shutoff"))
    code, doc = env.plan()
    assert changes(doc)[("Guest", "vm")]["impact"] == "disruptive"
    env.converge("--force-stop", "--shutdown-timeout", "1")
    assert not env.lookup("vm").isActive()


def test_an_existing_unmanaged_object_is_never_touched(env):
    """A network made by hand with a declared name: the plan refuses and says how to adopt it."""
    env.write(BASE)
    foreign = env.conn.networkDefineXML(f"<network><name>{env.name('net')}</name>"
                                        f"<ip address='{env.ip(1)}' prefix='24'/></network>")
    before = foreign.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1
    assert f"local/Network/{env.name('net')} exists on the host but is not managed" in done.stderr
    assert "virt-reconcile adopt Network/" in done.stderr
    assert env.apply().returncode == 1
    assert foreign.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) == before and not foreign.isActive()
    assert names_with(env) == [env.name("net")]


def names_with(env) -> list[str]:
    conn = env.conn
    return sorted([d.name() for d in conn.listAllDomains(0) if env.prefix in d.name()]
                  + [n.name() for n in conn.listAllNetworks(0) if env.prefix in n.name()]
                  + [p.name() for p in conn.listAllStoragePools(0) if env.prefix in p.name()])


def test_volumes_of_an_inactive_pool_converge(env):
    env.write(BASE)
    env.converge()
    env.lookup("vm")
    dom = env.conn.lookupByName(env.name("vm"))
    dom.destroy()
    env.conn.storagePoolLookupByName(env.name("pool")).destroy()   # stopped by hand
    code, doc = env.plan()
    volumes = [c for c in doc["changes"] if c["kind"] == "Volume"]
    assert code == 2 and volumes and all("is inactive" in c["reason"] for c in volumes)
    env.converge()
    pool = env.conn.storagePoolLookupByName(env.name("pool"))
    assert pool.isActive() and len(pool.listVolumes()) == 2 and env.lookup("vm").isActive()


def test_volume_format_change_recreates_only_with_allow_destroy(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("capacity: 32MiB}", "capacity: 32MiB, format: raw}"))
    code, doc = env.plan()
    change = changes(doc)[("Volume", "pool/" + env.name("data.qcow2"))]
    assert change["action"] == "recreate" and change["impact"] == "destructive"
    assert env.apply().returncode == 1
    env.converge("--allow-destroy")
    vol = env.conn.storagePoolLookupByName(env.name("pool")).storageVolLookupByName(env.name("data.qcow2"))
    assert "<format type='raw'/>" in vol.XMLDesc(0)


def test_nic_hot_plug_then_second_hot_plug_waits_for_restart(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("interfaces: [{network: P-net}]".replace("P-", env.prefix + "-"),
                                             f"interfaces: [{{network: {env.name('net')}}}, "
                                             f"{{network: {env.name('net')}, model: e1000e}}]"))
    code, doc = env.plan()
    guest = changes(doc)[("Guest", "vm")]
    assert guest["impact"] == "live" and len(guest["changes"]) == 1
    env.converge()
    running = fields.read("Guest", env.lookup("vm").XMLDesc(0))
    assert len(running["interfaces"]) == 2
    text = path.read_text().replace("    - {device: cdrom}\n", "    - {device: cdrom}\n"
                                    f"    - {{volume: {env.name('pool')}/{env.name('data.qcow2')}}}\n")
    path.write_text(text)
    code, doc = env.plan()               # the one spare PCIe port is taken by the new NIC
    assert impacts(changes(doc)[("Guest", "vm")]) == {"disks[2]": "restart"}
