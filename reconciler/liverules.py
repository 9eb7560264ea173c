"""Live rules: how a change reaches a running object without a restart (pure).

A declaration in fields.py names the rule of its field (`live=`); planners ask it for the op
that makes the change live, and a change without a rule, or whose rule returns None, waits for a
restart (guests) or restarts the object (networks, pools)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .plan import Op, OpName


@dataclass
class LiveChange:
    """One change of a running object, with what a rule may need to decide."""

    parts: list[str]                # the field's path (fields.py names)
    before: Any
    after: Any
    running: dict = field(default_factory=dict)   # the running object's values
    xml: str | None = None          # the rendered element of a keyed item
    item: dict | None = None        # the desired values of that item
    slots: list[int] = field(default_factory=lambda: [0])   # free hot-plug slots, shared by the action
    ops: list[Op] = field(default_factory=list)   # ops planned so far for the object
    element: str | None = None      # a keyed item leaving: its element as the object runs it


def memory_current(ch: LiveChange) -> Op | None:
    """The balloon target moves live up to the running maximum."""
    if ch.after <= ch.running["memory"]["max"]:
        return Op(OpName.SET_MEMORY, {"kib": ch.after // 1024})
    return None


def vcpus_current(ch: LiveChange) -> Op | None:
    """vCPUs come online live up to the running maximum (taking them offline needs the guest)."""
    if ch.running["vcpus"]["current"] < ch.after <= ch.running["vcpus"]["max"]:
        return Op(OpName.SET_VCPUS, {"count": ch.after})
    return None


def hotplug(ch: LiveChange) -> Op | None:
    """A new disk, NIC or host device is attached live while a PCI slot is free. One leaving is
    detached live when it leaves without the guest's help (USB: a USB disk or host device); a PCI
    device waits for the guest's ACPI unplug, which a guest may refuse or never answer, so it
    goes at the restart."""
    if ch.before is None and ch.after is not None and ch.after.get("device", "disk") == "disk" and ch.slots[0] > 0:
        ch.slots[0] -= 1
        return Op(OpName.ATTACH_DEVICE, {"xml": ch.xml})
    if ch.before is not None and ch.after is None and len(ch.parts) == 2 and ch.element is not None:
        running = etree.fromstring(ch.element.encode())
        if running.xpath("boolean(self::disk[target/@bus='usb'] | self::hostdev[@type='usb'])"):
            return Op(OpName.DETACH_DEVICE, {"xml": ch.element})
    return None


def controller_hotplug(ch: LiveChange) -> Op | None:
    """A new SCSI controller (virtio-scsi) is attached live like a disk; USB, SATA and
    virtio-serial controllers wait for a restart (QEMU cannot hot-plug them)."""
    return hotplug(ch) if ch.parts[1].startswith("scsi:") else None


def nic_update(ch: LiveChange) -> Op | None:
    """A NIC's link state and bandwidth change live (updateDeviceFlags with the NIC's XML), when
    nothing else of it changes."""
    return Op(OpName.UPDATE_DEVICE, {"xml": ch.xml}) if _rest_runs(ch, ("link", "bandwidth")) else None


def _rest_runs(ch: LiveChange, live_fields: tuple[str, ...]) -> bool:
    """The keyed item `ch` changes runs, and its desired fields but `live_fields` are as it runs
    (only what can change live differs)."""
    running = (ch.running.get(ch.parts[0]) or {}).get(ch.parts[1])
    return running is not None and ch.item is not None and all(
        value == running.get(name) for name, value in ch.item.items() if name not in live_fields)


def graphics_password(ch: LiveChange) -> Op | None:
    """A VNC/SPICE password changes live (updateDeviceFlags on the running graphics) when the
    rest of the graphics stays as it runs (a port libvirt allocated, or qemu.conf's listen address,
    are not differences); the op holds the reference, never the value."""
    token = getattr(ch.after, "token", None)
    default_listen = ("listen",) if (ch.item or {}).get("listen") == "default" else ()
    if token is None or not _rest_runs(ch, ("password", "port") + default_listen):
        return None
    return Op(OpName.SET_GRAPHICS_PASSWORD, {"type": ch.parts[1], "password": token})


def cdrom_media(ch: LiveChange) -> Op | None:
    """A cdrom's media changes live."""
    if ch.item and ch.item.get("device") == "cdrom":
        return Op(OpName.UPDATE_DEVICE, {"xml": ch.xml})
    return None


_COMMANDS = {(True, False): "add", (False, True): "delete", (False, False): "modify"}


def network_items(section: str, doc: str, modify: bool = True, delete_xml=lambda key: None):
    """The rule of a network's keyed items that virNetworkUpdate changes in `section`: one op
    per item, added, modified whole (when `modify`) or deleted (its element as the network has
    it, else `delete_xml(key)`). Without `modify`, an item whose fields change restarts the
    network (libvirt cannot modify DNS hosts and records in place)."""
    def rule(ch: LiveChange) -> Op | None:
        key = ch.parts[1]
        planned = next((o for o in ch.ops if o.args.get("section") == section and o.args.get("key") == key), None)
        if planned is not None:
            return planned              # this item's update is planned already (it is not added twice)
        command = _COMMANDS[(ch.before is None and len(ch.parts) == 2, ch.after is None)]
        if command == "modify" and not modify:
            return None
        xml = (ch.element or delete_xml(key)) if command == "delete" else ch.xml
        return None if xml is None else Op(OpName.NETWORK_UPDATE, {"command": command, "section": section,
                                                                   "xml": xml, "key": key})
    rule.__doc__ = doc
    return rule


dhcp_host = network_items("ip-dhcp-host", "DHCP hosts are added, changed and removed with virNetworkUpdate "
                          "(one op per host).", delete_xml=lambda mac: f'<host mac="{mac}"/>')
dns_host = network_items("dns-host", "DNS hosts are added and removed with virNetworkUpdate (dnsmasq rereads "
                         "its hosts file); one whose names change restarts the network.", modify=False,
                         delete_xml=lambda key: f'<host ip="{key.replace("_", ".")}"/>')
dns_txt = network_items("dns-txt", "TXT records are added and removed with virNetworkUpdate; one whose value "
                        "changes restarts the network.", modify=False)
dns_srv = network_items("dns-srv", "SRV records are added and removed with virNetworkUpdate; one whose fields "
                        "change restarts the network.", modify=False)
portgroup = network_items("portgroup", "Portgroups are added, changed and removed with virNetworkUpdate; NICs "
                          "already plugged keep their settings until they are plugged again.")
