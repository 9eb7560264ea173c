"""Planners on recorded live XML: impact per change and the ops apply will run (no libvirt)."""
from __future__ import annotations

import shutil

import pytest

from lxml import etree

from reconciler import desired, fields, ownership, pipeline, planners
from reconciler.live import HostFacts, HostState, LiveObject
from tests.helpers import DATA
from tests.unit.test_normalise import LIVE, OBJECTS


def plan_for(tmp_path, kind, name, edits=(), live: LiveObject | None = None, missing=False):
    src = tmp_path / "m"
    shutil.copytree(DATA / "manifests" / "recorded", src)
    for file, old, new in edits:
        text = (src / file).read_text()
        assert old in text, old
        (src / file).write_text(text.replace(old, new))
    manifest = pipeline.load([src])
    objects = dict(LIVE)
    if live is not None:
        objects[(kind, name)] = live
    if missing:
        objects.pop((kind, name))
    state = HostState("local", "qemu:///system", HostFacts({"kvm", "qemu"}), objects, {"demo-pool"})
    item = next(i for i in manifest.items.values() if (i.ref.kind, i.ref.name) == (kind, name))
    want = desired.build(item, manifest, state)
    owned = ownership.records(state, "default")
    return planners.PLANNERS[kind](want, state.get(kind, name), owned.get((kind, name)))


def impacts(action):
    return {c.path: c.impact for c in action.changes}


def op_names(action):
    return [o.name for o in action.ops]


def shut_off(kind, name):
    old = LIVE[(kind, name)]
    return LiveObject(kind, name, old.xml, False, old.autostart, None)


def test_no_change_means_no_action(tmp_path):
    for n, (kind, name) in enumerate(OBJECTS):
        assert plan_for(tmp_path / str(n), kind, name) is None


def test_missing_guest_is_created_and_started(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", missing=True)
    assert action.action == "create" and op_names(action) == ["define_domain", "set_autostart", "start"]
    assert action.deps == ["local/Network/demo-net", "local/Volume/demo-pool/web-1-root.qcow2",
                           "local/Volume/demo-pool/web-1-data.qcow2"]


def test_running_guest_memory_and_vcpus_within_max_are_live(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [
        ("guest.yaml", "current: 384MiB", "current: 512MiB"),
        ("guest.yaml", "vcpus: {current: 2, max: 2}", "vcpus: {current: 2, max: 4}")])
    assert impacts(action) == {"memory.current": "live", "vcpus.max": "restart"}
    assert action.impact == "restart" and action.action == "update"
    assert op_names(action) == ["set_memory", "edit", "restart"]
    assert action.ops[0].args == {"kib": 512 * 1024}


def test_memory_above_running_max_needs_restart(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "{current: 384MiB, max: 768MiB}",
                                                    "{current: 1GiB, max: 2GiB}")])
    assert impacts(action) == {"memory.current": "restart", "memory.max": "restart"}


SECOND_NIC = [("guest.yaml", "    - {network: demo-net, mac: \"52:54:00:d3:00:01\"}",
               "    - {network: demo-net, mac: \"52:54:00:d3:00:01\"}\n    - {network: demo-net, mac: \"52:54:00:d3:00:09\"}")]
SPARE_PORT = "<controller type='pci' index='99' model='pcie-root-port'/></devices>"


def test_hotplug_needs_a_free_pci_slot(tmp_path):
    """A q35 guest without a free pcie-root-port cannot take a new NIC until it restarts."""
    old = LIVE[("Guest", "web-1")]
    root = fields.parse(old.live_xml)
    for port in root.xpath("devices/controller[@model='pcie-root-port']"):
        if not root.xpath(f"devices/*/address[@type='pci'][@bus='{int(port.get('index')):#04x}']"):
            port.getparent().remove(port)                 # no spare port left
    running = etree.tostring(root, encoding="unicode")
    action = plan_for(tmp_path, "Guest", "web-1", SECOND_NIC, live=LiveObject("Guest", "web-1", old.xml, True, True, running))
    assert impacts(action) == {"interfaces[1]": "restart"}


def test_hotplug_nic_is_live_with_a_free_slot(tmp_path):
    old = LIVE[("Guest", "web-1")]
    running = old.live_xml.replace("</devices>", SPARE_PORT)
    action = plan_for(tmp_path, "Guest", "web-1", SECOND_NIC, live=LiveObject("Guest", "web-1", old.xml, True, True, running))
    assert impacts(action) == {"interfaces[1]": "live"}
    attach = action.ops[0]
    assert attach.name == "attach_device" and "52:54:00:d3:00:09" in attach.args["xml"]
    assert op_names(action)[-1] == "set_live_owner"   # all live: running and saved agree


def test_cdrom_media_change_is_live(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "demo-media.iso", "other.iso")])
    assert impacts(action) == {"disks[2].path": "live"}
    assert action.ops[0].name == "update_device" and "other.iso" in action.ops[0].args["xml"]


def test_removing_a_disk_needs_restart_and_is_not_hot_unplugged(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "    - {volume: demo-pool/web-1-data.qcow2}\n", "")])
    assert impacts(action) == {"disks[vdb]": "restart"}
    assert "attach_device" not in op_names(action) and op_names(action)[-1] == "restart"


def test_shutoff_guest_takes_every_change_into_its_definition_then_starts(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "max: 768MiB", "max: 1GiB")],
                      live=shut_off("Guest", "web-1"))
    assert impacts(action) == {"memory.max": "live", "state": "live"}
    assert op_names(action) == ["edit", "start"]


def test_state_shutoff_stops_a_running_guest(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "state: running", "state: shutoff")])
    assert action.impact == "disruptive" and op_names(action)[-1] == "shutdown"


def test_pending_restart_is_reported_not_called_drift(tmp_path):
    old = LIVE[("Guest", "web-1")]
    stale = old.live_xml.replace('hash="', 'hash="0')
    action = plan_for(tmp_path, "Guest", "web-1", live=LiveObject("Guest", "web-1", old.xml, True, True, stale))
    assert action.action == "restart" and action.impact == "restart"
    assert op_names(action) == ["restart"]


def test_dhcp_host_changes_use_network_update(tmp_path):
    action = plan_for(tmp_path, "Network", "demo-net", [
        ("network.yaml", "{name: db-1, mac: \"52:54:00:d3:00:02\", ip: 10.213.0.12}",
         "{name: db-1, mac: \"52:54:00:d3:00:02\", ip: 10.213.0.13}")])
    assert impacts(action) == {"ipv4.dhcp.hosts[1].ip": "live"}
    update = action.ops[0]
    assert update.name == "network_update" and update.args["command"] == "modify"
    assert op_names(action) == ["network_update", "edit"]


def test_network_forward_change_restarts_an_active_network(tmp_path):
    action = plan_for(tmp_path, "Network", "demo-net", [("network.yaml", "forward: nat", "forward: route")])
    assert action.impact == "disruptive"
    assert op_names(action) == ["edit", "stop", "start", "replug_guests"]
    assert "lose their link" in action.reason


def test_inactive_pool_is_started(tmp_path):
    action = plan_for(tmp_path, "StoragePool", "demo-pool", live=shut_off("StoragePool", "demo-pool"))
    assert op_names(action) == ["build_pool", "start"] and action.impact == "live"


@pytest.mark.parametrize("capacity,impact,shrink", [("128MiB", "live", False), ("32MiB", "destructive", True)])
def test_volume_resize(tmp_path, capacity, impact, shrink):
    action = plan_for(tmp_path, "Volume", "demo-pool/web-1-data.qcow2",
                      [("guest.yaml", "capacity: 64MiB", f"capacity: {capacity}")])
    resize = next(o for o in action.ops if o.name == "resize_volume")
    assert action.impact == impact and resize.args["shrink"] is shrink


def test_volume_format_change_is_a_destructive_recreate(tmp_path):
    action = plan_for(tmp_path, "Volume", "demo-pool/web-1-data.qcow2",
                      [("guest.yaml", "capacity: 64MiB}", "capacity: 64MiB, format: raw}")])
    assert action.action == "recreate" and action.impact == "destructive"
    assert "cannot change in place" in action.reason


def test_autostart_flip_records_itself_without_a_separate_marker_change(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "autostart: true", "autostart: false")])
    assert impacts(action) == {"autostart": "live"}
    assert op_names(action) == ["edit", "set_live_owner", "set_autostart"]


def test_nic_bandwidth_changes_live_in_one_update(tmp_path):
    """Bandwidth limits go live through updateDeviceFlags with the NIC's XML (one op however many
    limits change); another change of the same NIC waits for a restart."""
    qos = '{network: demo-net, mac: "52:54:00:d3:00:01", bandwidth: {inbound: {average: 500}, outbound: {average: 64}}}'
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", '{network: demo-net, mac: "52:54:00:d3:00:01"}', qos)])
    assert impacts(action) == {"interfaces[0].bandwidth.inbound.average": "live",
                               "interfaces[0].bandwidth.outbound.average": "live"}
    updates = [o for o in action.ops if o.name == "update_device"]
    assert len(updates) == 1 and "<inbound average=\"500\"/>" in updates[0].args["xml"]
    assert op_names(action)[-1] == "set_live_owner"
    both = qos.replace("demo-net,", "demo-net, model: e1000e,")
    action = plan_for(tmp_path / "2", "Guest", "web-1", [("guest.yaml", '{network: demo-net, mac: "52:54:00:d3:00:01"}', both)])
    assert set(impacts(action).values()) == {"restart"}
