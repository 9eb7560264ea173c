"""Block and network disks, WWN, shareable, I/O threads, controllers and free hot-plug ports on the
real daemon: a running guest gets a block device (a loop device) with an I/O thread and a shared
SCSI disk with a WWN behind a virtio-scsi controller; it keeps its free PCIe root ports after a
disk is hot-plugged; a network (RBD) disk is defined; adopt writes them back and plans empty."""
from __future__ import annotations

import subprocess

import libvirt
import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

SPEC = """\
  machine: q35
  iothreads: 2
  controllers:
    - {type: scsi, model: virtio-scsi, queues: 1, iothread: 2}
    - {type: usb, model: qemu-xhci, ports: 4}
  hotplug_slots: 2
  disks:
    - {block: LOOP, iothread: 1, cache: none, io: native}
    - {path: SHARED, bus: scsi, wwn: 5000C50015EA71AC, shareable: true, cache: none}
"""

RBD = """\
    - network: {protocol: rbd, name: rbdpool/P-img, hosts: [{name: 192.0.2.1, port: 6789}],
                auth: {username: admin, secret_usage: P-ceph}}
"""


@pytest.fixture
def loop(env):
    backing = IMAGES / f"{env.prefix}-loop.img"
    backing.write_bytes(b"\0" * 4 * 1024 * 1024)
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True)
    yield dev.stdout.strip()
    subprocess.run(["losetup", "-d", dev.stdout.strip()], check=False)


def test_block_disk_controllers_and_free_ports(env, loop):
    shared = IMAGES / f"{env.prefix}-shared.img"
    shared.write_bytes(b"\0" * 1024 * 1024)
    path = env.write(small_guest("P-dsk", SPEC.replace("LOOP", loop).replace("SHARED", str(shared))))
    env.converge()
    dom = env.lookup("dsk")
    assert dom.isActive()
    saved = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for part in ("<iothreads>2</iothreads>", f"<source dev='{loop}'", "iothread='1'", "<wwn>5000c50015ea71ac</wwn>",
                 "<shareable/>", "<controller type='scsi' index='0' model='virtio-scsi'>",
                 "<driver queues='1' iothread='2'/>", "model='qemu-xhci' ports='4'"):
        assert part in saved, part
    from reconciler import fields
    assert fields.free_root_ports(fields.parse(saved)) == 2         # settled after libvirt placed the devices

    # a hot-plugged disk takes a port: the saved definition gets another, the plan stays empty
    extra = IMAGES / f"{env.prefix}-extra.img"
    extra.write_bytes(b"\0" * 1024 * 1024)
    path.write_text(path.read_text() + f"    - {{path: {extra}}}\n")
    code, doc = env.plan()
    assert [(c["path"], c["impact"]) for c in doc["changes"][0]["changes"]] == [("disks[2]", "live")], doc
    env.converge()
    saved = env.lookup("dsk").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert fields.free_root_ports(fields.parse(saved)) == 2 and str(extra) in saved

    # adopt writes the disks and controllers back and plans empty
    text = env.readopt(path, "dsk")
    for part in (f"block: {loop}", "iothread: 1", "wwn: 5000c50015ea71ac", "shareable: true", "iothreads: 2",
                 "model: virtio-scsi", "ports: 4", "hotplug_slots: 2"):
        assert part in text, (part, text)
    code, doc = env.plan()
    assert code == 0, doc


def test_a_network_disk_is_defined(env):
    env.write(small_guest("P-rbd", "  disks:\n" + RBD).replace("state: running", "state: shutoff"))
    env.converge()
    saved = env.lookup("rbd").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for part in (f"<source protocol='rbd' name='rbdpool/{env.prefix}-img'>", "<host name='192.0.2.1' port='6789'/>",
                 "<auth username='admin'>", f"<secret type='ceph' usage='{env.prefix}-ceph'/>"):
        assert part in saved, part


def test_a_scsi_controller_is_hot_plugged(env):
    path = env.write(small_guest("P-hot", "  machine: q35\n  hotplug_slots: 2\n"))
    env.converge()
    guest_id = env.lookup("hot").ID()
    path.write_text(path.read_text() + "  controllers:\n    - {type: scsi, index: 3, model: virtio-scsi}\n")
    code, doc = env.plan()
    assert [(c["path"], c["impact"]) for c in doc["changes"][0]["changes"]] == [("controllers[0]", "live")], doc
    env.converge()
    dom = env.lookup("hot")
    assert dom.ID() == guest_id and "<controller type='scsi' index='3' model='virtio-scsi'>" in dom.XMLDesc(0)


def test_a_usb_disk_leaves_live_a_pci_disk_at_the_restart(env):
    usb, pci = (IMAGES / f"{env.prefix}-{name}.img" for name in ("usb", "pci"))
    for image in (usb, pci):
        image.write_bytes(b"\0" * 1024 * 1024)
    spec = f"  machine: q35\n  disks:\n    - {{path: {pci}}}\n    - {{path: {usb}, bus: usb}}\n"
    path = env.write(small_guest("P-unp", spec))
    env.converge()
    guest_id = env.lookup("unp").ID()
    path.write_text(path.read_text().replace(f"    - {{path: {usb}, bus: usb}}\n", ""))
    code, doc = env.plan()
    assert [(c["path"], c["impact"]) for c in doc["changes"][0]["changes"]] == [("disks[sda]", "live")], doc
    env.converge()
    dom = env.lookup("unp")
    assert dom.ID() == guest_id and str(usb) not in dom.XMLDesc(0)       # gone from the running guest
    assert str(usb) not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    path.write_text(path.read_text().replace(f"    - {{path: {pci}}}\n", "").replace("  disks:\n", "  disks: []\n"))
    code, doc = env.plan()
    assert [(c["path"], c["impact"]) for c in doc["changes"][0]["changes"]] == [("disks[vda]", "restart")], doc
