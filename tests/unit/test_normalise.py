"""Normalisation and diff on XML recorded from the real daemon: libvirt's additions are no change."""
from __future__ import annotations

import pytest

from reconciler import desired, fields, pipeline
from reconciler.diff import diff
from reconciler.live import HostFacts, HostState, LiveObject
from tests.helpers import DATA, recorded

LIVE = {
    ("Guest", "web-1"): LiveObject("Guest", "web-1", recorded("guest-inactive.xml"), True, True,
                                   recorded("guest-running.xml")),
    ("Network", "demo-net"): LiveObject("Network", "demo-net", recorded("network-inactive.xml"), True, True),
    ("StoragePool", "demo-pool"): LiveObject("StoragePool", "demo-pool", recorded("pool-inactive.xml"), True, True),
    ("Volume", "demo-pool/web-1-root.qcow2"): LiveObject("Volume", "demo-pool/web-1-root.qcow2",
                                                         recorded("volume-web-1-root.qcow2.xml"), True),
    ("Volume", "demo-pool/web-1-data.qcow2"): LiveObject("Volume", "demo-pool/web-1-data.qcow2",
                                                         recorded("volume-web-1-data.qcow2.xml"), True),
    ("Guest", "virt-reconcile-inventory-default"): LiveObject(
        "Guest", "virt-reconcile-inventory-default", recorded("inventory-default.xml")),
}
OBJECTS = [key for key in LIVE if not key[1].startswith("virt-reconcile-")]


def state() -> HostState:
    return HostState("local", "qemu:///system", HostFacts({"kvm", "qemu"}), dict(LIVE), {"demo-pool"})


def wanted(kind: str, name: str, host_state: HostState):
    manifest = pipeline.load([DATA / "manifests" / "recorded"])
    item = next(i for i in manifest.items.values() if i.ref.kind == kind and i.ref.name == name)
    return desired.build(item, manifest, host_state)


@pytest.mark.parametrize("kind,name", OBJECTS)
def test_recorded_objects_match_their_manifests(kind, name):
    want = wanted(kind, name, state())
    assert diff(want.fields, fields.read(kind, LIVE[(kind, name)].xml)) == []


def test_libvirt_additions_are_present_in_the_recorded_xml():
    """The recorded guest really carries what libvirt adds, so the test above proves something."""
    xml = recorded("guest-inactive.xml")
    for added in ("machine='pc-q35-7.2'", "<controller type='pci'", "<address type='pci'", "<memballoon",
                  "<emulator>", "<input type='mouse'", "<video>", "unit='KiB'"):
        assert added in xml, added


def test_running_xml_differs_only_in_runtime_values():
    """Why pending restarts are found through the owner hash, not by diffing the running XML."""
    want = wanted("Guest", "web-1", state())
    running = fields.read("Guest", recorded("guest-running.xml"))
    assert [c.path for c in diff(want.fields, running)] == ["graphics.vnc.port", "memory.current"]


@pytest.mark.parametrize("edit,expected", [
    (("<memory unit='KiB'>786432</memory>", "<memory unit='KiB'>1048576</memory>"), ["memory.max"]),
    (("machine='pc-q35-7.2'", "machine='pc-q35-8.1'"), []),          # newer QEMU, same alias
    (("machine='pc-q35-7.2'", "machine='pc-i440fx-7.2'"), ["machine"]),
    (("52:54:00:d3:00:01", "52:54:00:D3:00:01"), []),                   # MAC case
    # vdb is missing, vdc is a disk the manifests never managed (no record): left alone
    (("<target dev='vdb' bus='virtio'/>", "<target dev='vdc' bus='virtio'/>"), ["disks.vdb"]),
    (("<source network='demo-net'/>", "<source network='other'/>"), ["interfaces.52:54:00:d3:00:01.network"]),
    (("<boot dev='hd'/>", "<boot dev='network'/>"), ["boot"]),
    (("<vcpu placement='static'>2</vcpu>", "<vcpu placement='static' current='1'>2</vcpu>"), ["vcpus.current"]),
])
def test_guest_edits_show_exactly_the_changed_field(edit, expected):
    xml = recorded("guest-inactive.xml")
    assert edit[0] in xml
    changed = xml.replace(edit[0], edit[1])
    want = wanted("Guest", "web-1", state())
    assert [c.path for c in diff(want.fields, fields.read("Guest", changed))] == expected


def test_network_prefix_and_netmask_are_the_same():
    xml = recorded("network-inactive.xml").replace("prefix='24'", "netmask='255.255.255.0'")
    want = wanted("Network", "demo-net", state())
    assert diff(want.fields, fields.read("Network", xml)) == []


def test_network_identity_is_carried_from_live():
    want = wanted("Network", "demo-net", state())
    live = fields.parse(recorded("network-inactive.xml"))
    assert live.xpath("string(uuid)") in want.xml
    assert live.xpath("string(mac/@address)") in want.xml


def test_unstated_bridge_name_is_kept_not_compared():
    manifest = pipeline.load([DATA / "manifests" / "recorded"])
    item = next(i for i in manifest.items.values() if i.ref.kind == "Network")
    item.doc = item.doc.model_copy(update={"spec": item.spec.model_copy(update={"bridge": None})})
    want = desired.build(item, manifest, state())
    assert "bridge" not in want.fields
    assert "virbr-demo" in want.xml   # carried from the live definition, so no new name is invented


def test_volume_capacity_in_other_units():
    xml = recorded("volume-web-1-data.qcow2.xml").replace("<capacity unit='bytes'>67108864</capacity>",
                                                          "<capacity unit='KiB'>65536</capacity>")
    want = wanted("Volume", "demo-pool/web-1-data.qcow2", state())
    assert diff(want.fields, fields.read("Volume", xml)) == []


def test_three_way_resets_what_left_the_manifest_and_leaves_what_it_never_stated():
    """S = the manifest now, M = what was applied last (the owner record), live = the host."""
    want = wanted("Guest", "web-1", state())
    live = fields.read("Guest", recorded("guest-inactive.xml").replace(
        "<cpu mode='custom' match='exact' check='none'>", "<cpu mode='host-passthrough' check='none'>")
        .replace("<target dev='vdb' bus='virtio'/>", "<target dev='vdc' bus='virtio'/>"))
    live["disks"]["vdd"] = dict(live["disks"]["vdc"])          # made by hand, never applied
    applied = {**want.fields, "cpu": {"mode": "host-passthrough"}, "type": "kvm",
               "disks": {**want.fields["disks"], "vdc": live["disks"]["vdc"]}}
    changes = {c.path: (c.before, c.after) for c in diff(want.fields, live, applied, fields.REQUIRED["Guest"])}
    assert changes["cpu.mode"] == ("host-passthrough", None)            # left the manifest: reset
    assert changes["disks.vdc"][1] is None                               # applied before: removed
    assert changes["disks.vdb"][0] is None                               # stated, missing: added
    assert "disks.vdd" not in changes and "type" not in changes          # never stated / required
    assert not any(c.path.startswith("cpu") for c in diff(want.fields, live))   # without M: left alone
    exclusive = {c.path for c in diff(want.fields, live, applied, fields.REQUIRED["Guest"], ("disks",))}
    assert {"disks.vdc", "disks.vdd"} <= exclusive                              # the list is the whole list
