"""Element declarations: each field of libvirt XML bound to its XPath once, with how to read it
(into a canonical value) and how to write it (editing an existing definition in place).

The same reader parses the rendered (desired) XML and the XML read from libvirt, so both sides
of a diff are normalised by the same code; the same declaration edits libvirt's saved
definition, changing only what the field names (edit.py). A table maps a field name to:
  F(xpath, conv, default, write)   one value (first match) converted by `conv`; `write(node, value)`
                                   sets it (default: the attribute, text or presence the path names)
  L(xpath, conv, write)            a list of values, in document order (written whole)
  Items(xpath, key, table, parent) repeated elements as a dict keyed by `key` (never by position);
                                   new ones are rendered from templates and put below `parent`
  a nested dict                    a group of fields
"""
from __future__ import annotations

import functools
import ipaddress
import os
import threading
import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Any, Callable

from lxml import etree

from . import liverules, secretref, xmlpath
from .units import human_size, libvirt_size


def text(node) -> str:
    return (node.text or "").strip() if isinstance(node, etree._Element) else str(node)


def number(node) -> int:
    """An element's text, or an attribute, as an integer."""
    return int(text(node))


def size(node) -> int:
    return libvirt_size(node.text or "0", node.get("unit"))


def exists(_node) -> bool:
    return True


def path(node) -> str:
    return os.path.normpath(text(node))


def ipv4_cidr(node) -> str:
    prefix = node.get("prefix") or node.get("netmask") or "32"
    return str(ipaddress.IPv4Interface(f"{node.get('address')}/{prefix}"))


def ip_range(node) -> str:
    return f"{node.get('start')}-{node.get('end')}"


def volume_ref(node) -> str:
    return f"{node.get('pool')}/{node.get('volume')}" if node.get("pool") else ""


def lower(node) -> str:
    return text(node).lower()


@dataclass(frozen=True)
class F:
    xpath: str
    conv: Callable[[Any], Any] = text
    default: Any = None
    write: Callable[[Any, Any], None] | None = None
    required: bool = False     # libvirt needs it: a field that leaves the manifest keeps its value
    also: tuple = ()           # other paths its writer keeps in step (they count as managed)
    manifest: str | None = None   # its path in a manifest's spec, when not its name
    live: Callable | None = None  # liverules: how a change reaches the running object (None: restart)
    adopt: Callable | None = None  # the value as a manifest writes it (None: left out); default as read
    runtime: bool = False         # a running object's value is compared too (it can be changed live only)
    settle: bool = False          # libvirt's define moves it: written again right after a create
    secret: bool = False          # a sensitive value: compared by keyed hash, never adopted or shown
    derived: bool = False         # no manifest field: the tool derives it from another object (never adopted)

    def set(self, node, value) -> None:
        """Write `value` below `node` (None or the default: remove what the path names)."""
        if self.write is not None:
            self.write(node, value)
        elif self.conv is exists:
            xmlpath.set_present(node, self.xpath, bool(value))
        else:
            xmlpath.set_value(node, self.xpath, None if value is None or value == self.default else str(value))


@dataclass(frozen=True)
class L:
    xpath: str
    conv: Callable[[Any], Any] = text
    write: Callable[[Any, Any], None] | None = None

    def set(self, node, value) -> None:
        self.write(node, value)


@dataclass(frozen=True)
class Items:
    xpath: str
    key: str
    table: dict = field(default_factory=dict)
    key_conv: Callable[[Any], Any] = text
    parent: Callable[[Any], Any] = lambda root: xmlpath.ensure(root, ["devices"])
    manifest: str | None = None   # the list's path in a manifest's spec, when not its name
    single: bool = False          # the manifest holds one such element (a mapping, not a list)
    live: Callable | None = None  # liverules: how adding/removing an item reaches the running object
    key_field: str = ""           # the manifest field of an item that holds its key
    key_fields: Callable | None = None   # a key made of several manifest fields: key -> those fields

    def find(self, node, key: str):
        """The element whose key reads as `key`, or None."""
        for el in xp(self.xpath)(node):
            found = xp(self.key)(el)
            if found and self.key_conv(found[0]) == key:
                return el
        return None


# --- writers of fields whose XML is more than one attribute or text ----------------------------

def write_size(tag: str) -> Callable[[Any, int], None]:
    def write(node, value: int) -> None:
        el = xmlpath.ensure(node, [tag])
        el.text = str(-(-value // 1024))
        el.set("unit", "KiB")
    return write


def write_vcpu_max(node, value: int) -> None:
    """libvirt leaves out vcpu/@current when all vCPUs are online: a new maximum keeps the
    number online as it was (a change of vcpus.current is written before this one)."""
    vcpu = xmlpath.ensure(node, ["vcpu"])
    old = text(vcpu)
    if vcpu.get("current") is None and old and int(old) != value:
        vcpu.set("current", old)
    vcpu.text = str(value)


def write_cpu_mode(node, mode: str | None) -> None:
    """A new CPU mode drops what belonged to the old one (model, vendor, match, check); features,
    topology and NUMA cells stay. No mode: libvirt's default CPU; its features go too (libvirt
    takes features only with a mode or model), topology and NUMA cells stay, an empty <cpu> goes."""
    if mode is None:
        cpu = node.find("cpu")
        if cpu is not None:
            for attr in ("mode", "match", "check", "migratable"):
                cpu.attrib.pop(attr, None)
            if cpu.find("model") is None:
                for feature in cpu.findall("feature"):
                    cpu.remove(feature)
            xmlpath.prune(cpu, node)
        return
    cpu = xmlpath.ensure(node, ["cpu"])
    if cpu.get("mode") != mode:
        for child in cpu.findall("model") + cpu.findall("vendor"):
            cpu.remove(child)
        for attr in ("match", "check"):
            cpu.attrib.pop(attr, None)
    cpu.set("mode", mode)


def write_cpu_model(node, model: str | None) -> None:
    """A named CPU model (its fallback goes with it when it leaves)."""
    if model is None:
        xmlpath.set_present(node, "cpu/model", False)
        return
    xmlpath.ensure(node, ["cpu", "model"]).text = model


def write_max_memory(node, value: int | None) -> None:
    """maxMemory (memory hot-plug); None removes it with its slots."""
    if value is None:
        xmlpath.set_present(node, "maxMemory", False)
        return
    write_size("maxMemory")(node, value)


def cell_memory(cell) -> int:
    return libvirt_size(cell.get("memory") or "0", cell.get("unit"))


def write_cell_memory(cell, value: int) -> None:
    cell.set("memory", str(-(-value // 1024)))
    cell.set("unit", "KiB")


def write_balloon(node, model: str | None) -> None:
    """The balloon's model; a new model drops the old one's address and settings (libvirt keeps
    a balloon in every guest, so None leaves it as it is)."""
    if model is None:
        return
    retype(xmlpath.ensure(node, ["devices", "memballoon"]), "model", model)


_OS_BEFORE_BOOT = {"type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "dtb", "shim"}


def firmware_kind(node) -> str:
    """efi for `<os firmware='efi'>` or a pflash loader (firmware chosen by hand), else bios."""
    if isinstance(node, etree._Element):
        return "efi" if node.tag == "loader" else "bios"
    return "efi" if str(node) == "efi" else "bios"


def yes_no(node) -> bool:
    return text(node) == "yes"


def write_firmware(node, kind: str | None) -> None:
    """efi: libvirt chooses the UEFI firmware (`<os firmware='efi'>`); bios (or reset): the firmware
    attribute, features, loader and NVRAM element go (the NVRAM file stays on disk)."""
    os_el = xmlpath.ensure(node, ["os"])
    if kind == "efi":
        os_el.set("firmware", "efi")
        return
    os_el.attrib.pop("firmware", None)
    for tag in ("firmware", "loader", "nvram"):
        for el in os_el.findall(tag):
            os_el.remove(el)


def write_fw_feature(name: str) -> Callable[[Any, Any], None]:
    """One `<os><firmware><feature>`: enabled yes/no, or removed; secure boot turns SMM on."""
    def write(node, value: bool | None) -> None:
        os_el = xmlpath.ensure(node, ["os"])
        fw = os_el.find("firmware")
        old = fw.find(f"feature[@name='{name}']") if fw is not None else None
        if value is None:
            if old is not None:
                fw.remove(old)
                xmlpath.prune(fw, os_el)
            return
        if old is None:
            fw = fw if fw is not None else etree.SubElement(os_el, "firmware")
            old = etree.SubElement(fw, "feature", name=name)
        old.set("enabled", "yes" if value else "no")
        if value and name == "secure-boot":
            smm = xmlpath.ensure(node, ["features", "smm"])
            smm.set("state", "on")
    return write


def write_boot(node, devices: list[str]) -> None:
    """The boot order, written whole after <os>'s type, loader, nvram and kernel elements."""
    os_el = xmlpath.ensure(node, ["os"])
    for old in os_el.findall("boot"):
        os_el.remove(old)
    index = max((i + 1 for i, c in enumerate(os_el) if c.tag in _OS_BEFORE_BOOT), default=0)
    for offset, dev in enumerate(devices):
        os_el.insert(index + offset, etree.Element("boot", dev=dev))


def write_disk_bus(disk, bus: str) -> None:
    """A disk on another bus has another kind of address: libvirt assigns a new one."""
    xmlpath.set_value(disk, "target/@bus", bus)
    for address in disk.findall("address"):
        disk.remove(address)


_DISK_SOURCE = {"volume": ("pool", "volume"), "file": ("file",), "block": ("dev",), "network": ("protocol", "name")}


def _disk_source(disk, kind: str, values: dict) -> None:
    """Point a disk at a source of `kind` (file, volume, block, network): the disk's type follows,
    what belonged to another kind of source goes (a network source's hosts too); an empty value
    removes only this kind's attributes."""
    if not any(values.values()):
        if disk.get("type") == kind:
            for attr in values:
                xmlpath.set_value(disk, f"source/@{attr}", None)
        return
    if disk.get("type") != kind:
        disk.set("type", kind)
        source = disk.find("source")
        if source is not None:
            for attr in (a for k, attrs in _DISK_SOURCE.items() if k != kind for a in attrs):
                source.attrib.pop(attr, None)
            if kind != "network":
                for host in source.findall("host"):
                    source.remove(host)
    for attr, value in values.items():
        if value is not None:
            xmlpath.set_value(disk, f"source/@{attr}", str(value))


def write_disk_luks(disk, uuid: str | None) -> None:
    """The LUKS secret QEMU opens an encrypted volume with (the volume's own, by UUID)."""
    source = disk.find("source")
    for old in ([] if source is None else source.findall("encryption")):
        source.remove(old)
    if uuid:
        enc = etree.SubElement(xmlpath.ensure(disk, ["source"]), "encryption", format="luks")
        etree.SubElement(enc, "secret", type="passphrase", uuid=uuid)


def write_disk_volume(disk, ref: str) -> None:
    pool, _, volume = (ref or "").partition("/")
    _disk_source(disk, "volume", {"pool": pool or None, "volume": volume or None})


def write_disk_path(disk, file: str) -> None:
    _disk_source(disk, "file", {"file": file or None})


def write_disk_block(disk, dev: str) -> None:
    _disk_source(disk, "block", {"dev": dev or None})


def write_disk_network(attr: str) -> Callable[[Any, Any], None]:
    def write(disk, value: str | None) -> None:
        _disk_source(disk, "network", {attr: value})
    return write


def network_host(host) -> str:
    return f"{host.get('name')}:{host.get('port')}" if host.get("port") else host.get("name")


def write_network_hosts(disk, hosts: list[str]) -> None:
    """A network disk's hosts (name or name:port), written whole."""
    source = xmlpath.ensure(disk, ["source"])
    for old in source.findall("host"):
        source.remove(old)
    for entry in hosts or []:
        name, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        host = etree.SubElement(source, "host", name=name)
        if port:
            host.set("port", port)


AUTH_SECRET = {"rbd": "ceph", "iscsi": "iscsi"}


def write_auth_secret(disk, usage: str | None) -> None:
    """The libvirt secret a network disk authenticates with, by usage (its type follows the protocol)."""
    if usage is None:
        xmlpath.set_present(disk, "auth/secret", False)
        return
    secret = xmlpath.ensure(disk, ["auth", "secret"])
    secret.attrib.pop("uuid", None)
    secret.set("type", AUTH_SECRET.get(disk.xpath("string(source/@protocol)"), "iscsi"))
    secret.set("usage", usage)


ROOT_PORTS = "devices/controller[@type='pci'][@model='pcie-root-port']"


def _unused_root_ports(root) -> list:
    """The pcie-root-ports no device sits on (one without an index is not placed yet)."""
    used = {int(b, 16) for b in root.xpath("devices/*/address[@type='pci']/@bus")}
    return [el for el in root.xpath(ROOT_PORTS) if el.get("index") is None or int(el.get("index")) not in used]


def free_root_ports(root) -> int:
    """What a q35 guest has left for hot-plug."""
    return len(_unused_root_ports(root))


def write_root_ports(node, free: int | None) -> None:
    """Keep `free` pcie-root-ports unused: new ones are appended, unused ones go from the end
    (ports a device sits on always stay)."""
    if free is None:
        return
    devices = xmlpath.ensure(node, ["devices"])
    unused = _unused_root_ports(node)
    for el in unused[free:][::-1]:
        devices.remove(el)
    for _ in range(len(unused), free):
        etree.SubElement(devices, "controller", type="pci", model="pcie-root-port")


def controller_key(type_attr) -> str:
    return f"{type_attr}:{type_attr.getparent().get('index') or '0'}"


def controller_fields(key: str) -> dict:
    kind, _, index = key.partition(":")
    return {"type": kind, "index": int(index or 0)}


def write_listen(graphics, address: str) -> None:
    """The listen address is kept twice by libvirt: the attribute and a <listen> child; `none`
    (local clients only) is a <listen type='none'/> alone."""
    xmlpath.set_value(graphics, "@listen", address if address not in ("none", "default") else None)
    for listen in graphics.findall("listen"):
        if listen.get("type") in ("address", "none"):
            graphics.remove(listen)
    if address == "none":
        graphics.insert(0, etree.Element("listen", type="none"))
    elif address == "default":
        graphics.insert(0, etree.Element("listen", type="address"))
    elif address:
        graphics.insert(0, etree.Element("listen", type="address", address=address))


def write_port(graphics, port: int) -> None:
    fixed = port is not None and port > 0
    graphics.set("port", str(port if fixed else -1))
    graphics.set("autoport", "no" if fixed else "yes")


CONSOLE_XML = ('<serial type="pty"><target port="0"/></serial>',
               '<console type="pty"><target type="serial" port="0"/></console>')


SERIAL0 = "serial[@type='pty'][not(target/@port) or target/@port='0']"
CONSOLE0 = "console[@type='pty'][not(target/@port) or target/@port='0']"


def write_console(node, present: bool) -> None:
    """The serial console on a pty: serial port 0 and the console that shows it (other serial
    ports are serials' own)."""
    devices = xmlpath.ensure(node, ["devices"])
    has = bool(devices.xpath(SERIAL0))
    if present and not has:
        for xml in CONSOLE_XML:
            devices.append(etree.fromstring(xml))
    elif not present:
        for el in devices.xpath(SERIAL0) + devices.xpath(CONSOLE0):
            devices.remove(el)


_SERIAL_SOURCE = {"pty": (), "tcp": ("mode", "host", "service"), "file": ("path",), "unix": ("mode", "path")}


def write_serial_type(serial, kind: str) -> None:
    """Another kind of serial port (pty, tcp, file, unix): what its source holds for other kinds
    goes (in whatever order the other fields are written), its target and log stay."""
    if serial.get("type") != kind:
        source = serial.find("source")
        for attr in list(source.attrib) if source is not None else []:
            if attr not in _SERIAL_SOURCE[kind]:
                del source.attrib[attr]
        if source is not None and not source.attrib:
            serial.remove(source)
        if kind != "tcp":
            for el in serial.findall("protocol"):
                serial.remove(el)
    serial.set("type", kind)


NICS = "devices/interface[@type='network' or @type='bridge' or @type='direct' or @type='hostdev']"
_NIC_SOURCE = {"network": ("network", "portgroup"), "bridge": ("bridge",), "direct": ("dev", "mode")}


def write_nic_source(kind: str, attr: str) -> Callable[[Any, Any], None]:
    """A NIC's source of `kind` (network, bridge, direct): the interface's type follows it, and
    what belonged to another kind of source goes; None removes only this kind's attribute."""
    def write(nic, value: str | None) -> None:
        if value is None:
            if nic.get("type") == kind:
                xmlpath.set_value(nic, f"source/@{attr}", None)
            return
        if nic.get("type") != kind:
            nic.attrib.pop("managed", None)               # (a hostdev NIC's)
            nic.set("type", kind)
            source = nic.find("source")
            for other in (a for k, attrs in _NIC_SOURCE.items() if k != kind for a in attrs):
                if source is not None:
                    source.attrib.pop(other, None)
            for address in (source.findall("address") if source is not None else []):
                source.remove(address)
            for stale in ("target", "virtualport"):          # libvirt picks a new tap for the new kind
                for el in nic.findall(stale):
                    nic.remove(el)
        xmlpath.set_value(nic, f"source/@{attr}", value)
    return write


def pci_address(address) -> str:
    """A PCI address element as lspci -D writes it: 0000:01:00.0."""
    def number(name: str, default: str = "0") -> int:
        return int(address.get(name) or default, 16)
    return f"{number('domain'):04x}:{number('bus'):02x}:{number('slot'):02x}.{number('function'):x}"


def _pci_element(tag: str, pci: str, typed: bool) -> etree._Element:
    domain, bus, rest = pci.split(":")
    slot, function = rest.split(".")
    el = etree.Element(tag, **({"type": "pci"} if typed else {}))
    for name, value in (("domain", f"0x{domain}"), ("bus", f"0x{bus}"), ("slot", f"0x{slot}"),
                        ("function", f"0x{function}")):
        el.set(name, value)
    return el


def write_nic_hostdev(nic, pci: str | None) -> None:
    """An SR-IOV VF as the NIC: type hostdev, managed, the VF's address as its source; what
    belonged to another kind of NIC (source attributes, tap, model) goes."""
    if pci is None:
        if nic.get("type") == "hostdev":
            xmlpath.set_present(nic, "source", False)
        return
    if nic.get("type") != "hostdev":
        nic.set("type", "hostdev")
        nic.set("managed", "yes")
        for stale in ("source", "target", "virtualport", "model", "driver"):
            for el in nic.findall(stale):
                nic.remove(el)
    source = xmlpath.ensure(nic, ["source"])
    for old in source.findall("address"):
        source.remove(old)
    source.append(_pci_element("address", pci, typed=True))


def nic_vlan(vlan) -> list[int]:
    return [int(tag.get("id")) for tag in vlan.findall("tag")]


def write_vlan(nic, tags: list[int] | None) -> None:
    """VLAN tags, written whole (several: a trunk)."""
    for old in nic.findall("vlan"):
        nic.remove(old)
    if tags:
        vlan = etree.SubElement(nic, "vlan", **({"trunk": "yes"} if len(tags) > 1 else {}))
        for tag in tags:
            etree.SubElement(vlan, "tag", id=str(tag))


def hostdev_key(type_attr) -> str:
    """What identifies a host device given to a guest: pci:0000:01:00/0 (domain:bus:slot/function:
    a key holds no dot), usb:046d:c52b (vendor and product), usb:1/4 (bus and device), mdev:UUID."""
    el, kind = type_attr.getparent(), str(type_attr)
    try:
        if kind == "pci":
            return f"pci:{pci_address(el.find('source/address')).replace('.', '/')}"
        if kind == "usb" and el.find("source/vendor") is not None:
            return f"usb:{int(el.find('source/vendor').get('id'), 16):04x}:{int(el.find('source/product').get('id'), 16):04x}"
        if kind == "usb":
            address = el.find("source/address")
            return f"usb:{int(address.get('bus'))}/{int(address.get('device'))}"
        if kind == "mdev":
            return f"mdev:{el.find('source/address').get('uuid').lower()}"
    except (AttributeError, TypeError, ValueError):
        pass
    return f"{kind}:?"


def hostdev_fields(key: str) -> dict:
    kind, _, rest = key.partition(":")
    if kind == "usb" and ":" in rest:
        vendor, product = rest.split(":")
        return {"usb": {"vendor": vendor, "product": product}}
    if kind == "usb":
        bus, device = rest.split("/")
        return {"usb": {"bus": int(bus), "device": int(device)}}
    return {kind: rest.replace("/", ".")}


def write_on_off(attr_path: str) -> Callable[[Any, Any], None]:
    """An attribute that is on/off (None: removed)."""
    def write(node, value: bool | None) -> None:
        xmlpath.set_value(node, attr_path, None if value is None else ("on" if value else "off"))
    return write


def retype(el, attr: str, value: str) -> None:
    """Give `el` another kind (`attr` = `value`): what belonged to the old kind (its other
    attributes and children) goes; the same kind keeps everything."""
    if el.get(attr) != value:
        el.attrib.clear()
        for child in list(el):
            el.remove(child)
    el.set(attr, value)


def write_tpm_backend(tpm, backend: str) -> None:
    """emulator or passthrough: what belonged to the other backend goes."""
    retype(xmlpath.ensure(tpm, ["backend"]), "type", backend)


GUEST_AGENT = "org.qemu.guest_agent.0"


def on_off(node) -> bool:
    return text(node) == "on"


def write_state(path: str) -> Callable[[Any, Any], None]:
    """An element whose `state` attribute is on/off (None: the element goes)."""
    def write(node, value: bool | None) -> None:
        if value is None:
            xmlpath.set_present(node, path, False)
            return
        xmlpath.ensure(node, path.split("/")).set("state", "on" if value else "off")
    return write


def write_yes_no(path: str) -> Callable[[Any, Any], None]:
    def write(node, value: bool | None) -> None:
        xmlpath.set_value(node, path, None if value is None else ("yes" if value else "no"))
    return write


def write_spinlocks(node, retries: int | None) -> None:
    if retries is None:
        xmlpath.set_present(node, "features/hyperv/spinlocks", False)
        return
    el = xmlpath.ensure(node, ["features", "hyperv", "spinlocks"])
    el.set("state", "on")
    el.set("retries", str(retries))


def write_fs_driver(fs, driver: str | None) -> None:
    """virtiofs, or 9p (libvirt's driver type 'path', the default)."""
    xmlpath.set_value(fs, "driver/@type", "path" if driver in ("9p", None) else driver)


def write_channel(kind: str, name: str) -> Callable[[Any, Any], None]:
    """A virtio channel of `kind` named `name` (guest agent: a unix socket libvirt names; SPICE
    agent: spicevmc), added or removed."""
    def write(node, present: bool | None) -> None:
        devices = xmlpath.ensure(node, ["devices"])
        found = devices.xpath(f"channel[target/@name='{name}']")
        if present and not found:
            channel = etree.SubElement(devices, "channel", type=kind)
            etree.SubElement(channel, "target", type="virtio", name=name)
        elif not present:
            for el in found:
                devices.remove(el)
    return write


SPICE_AGENT = "com.redhat.spice.0"
REDIRDEV = "devices/redirdev[@type='spicevmc']"


def count_redirdev(first) -> int:
    return len(first.getparent().xpath("redirdev[@type='spicevmc']"))


def write_redirdev(node, count: int | None) -> None:
    """Keep `count` SPICE USB redirection channels: new ones are added, the last ones go."""
    devices = xmlpath.ensure(node, ["devices"])
    found = devices.xpath("redirdev[@type='spicevmc']")
    for el in found[count or 0:]:
        devices.remove(el)
    for _ in range(len(found), count or 0):
        etree.SubElement(devices, "redirdev", bus="usb", type="spicevmc")


def sensitive(node):
    """A password as compared: a keyed hash (secretref), never the value."""
    return secretref.digest(str(node))


def kib_bytes(node) -> int:
    return int(text(node)) * 1024


def write_kib(attr_path: str) -> Callable[[Any, Any], None]:
    def write(node, value: int | None) -> None:
        xmlpath.set_value(node, attr_path, None if value is None else str(value // 1024))
    return write


def write_forward(node, mode: str) -> None:
    """isolated has no <forward>; another mode drops what belonged to the old one (<nat>, dev...)."""
    forward = node.find("forward")
    if mode == "isolated":
        if forward is not None:
            node.remove(forward)
        return
    retype(xmlpath.ensure(node, ["forward"]), "mode", mode)


IPV4 = "ip[not(@family) or @family='ipv4']"


IPV6 = "ip[@family='ipv6']"
_IP_PATHS = {"ipv4": IPV4, "ipv6": IPV6}


def _ip(node, family: str, make: bool = False):
    """The network's <ip> of `family` (made when `make` and missing), or None."""
    found = node.xpath(_IP_PATHS[family])
    if found or not make:
        return found[0] if found else None
    return etree.SubElement(node, "ip", family=family)


def write_ip(family: str) -> Callable[[Any, str], None]:
    """The network's address and prefix of `family` (its DHCP settings stay); empty removes the <ip>."""
    def write(node, cidr: str) -> None:
        if not cidr:
            for ip in node.xpath(_IP_PATHS[family]):
                node.remove(ip)
            return
        ip = _ip(node, family, make=True)
        iface = ipaddress.ip_interface(cidr)
        ip.attrib.pop("netmask", None)
        ip.set("address", str(iface.ip))
        ip.set("prefix", str(iface.network.prefixlen))
    return write


def _dhcp(node):
    return xmlpath.ensure(_ip(node, "ipv4", make=True), ["dhcp"])


def write_dhcp_range(family: str) -> Callable[[Any, str], None]:
    """The first DHCP range of `family` (the <ip> is made when missing: its address is the ip
    field's, written in the same edit)."""
    def write(node, span: str) -> None:
        ip = _ip(node, family)
        dhcp = ip.find("dhcp") if ip is not None else None
        first = dhcp.find("range") if dhcp is not None else None
        if not span:
            if first is not None:
                dhcp.remove(first)
                xmlpath.prune(dhcp, ip)
            return
        start, end = span.split("-")
        if first is None:
            first = etree.Element("range")
            xmlpath.ensure(_ip(node, family, make=True), ["dhcp"]).insert(0, first)   # ranges before hosts (network.rng)
        first.set("start", start)
        first.set("end", end)
    return write


def more_ipv4(network) -> list[str]:
    return [ipv4_cidr(ip) for ip in network.xpath(IPV4)[1:]]


def write_more_ipv4(node, cidrs: list[str] | None) -> None:
    """The network's IPv4 addresses after the first, written whole (after the first)."""
    first, *more = node.xpath(IPV4) or [None]
    for old in more:
        node.remove(old)
    anchor = first
    for cidr in cidrs or []:
        iface = ipaddress.IPv4Interface(cidr)
        new = etree.Element("ip", family="ipv4", address=str(iface.ip), prefix=str(iface.network.prefixlen))
        if anchor is not None:
            anchor.addnext(new)
        else:
            node.append(new)
        anchor = new


def write_more_ranges(node, spans: list[str] | None) -> None:
    """The IPv4 DHCP ranges after the first, written whole (before the hosts: network.rng)."""
    ip = _ip(node, "ipv4")
    dhcp = ip.find("dhcp") if ip is not None else None
    for old in (dhcp.findall("range")[1:] if dhcp is not None else []):
        dhcp.remove(old)
    if not spans:
        return
    dhcp = _dhcp(node)
    at = len(dhcp.findall("range"))
    for n, span in enumerate(spans):
        start, end = span.split("-")
        dhcp.insert(at + n, etree.Element("range", start=start, end=end))


def write_bootp(attr: str) -> Callable[[Any, Any], None]:
    """The IPv4 DHCP network boot file or server (<bootp> follows the hosts)."""
    def write(node, value: str | None) -> None:
        ip = _ip(node, "ipv4")
        bootp = ip.find("dhcp/bootp") if ip is not None else None
        if value is None:
            if bootp is not None:
                bootp.attrib.pop(attr, None)
                if not bootp.get("file"):
                    dhcp = bootp.getparent()
                    dhcp.remove(bootp)
                    xmlpath.prune(dhcp, ip)
            return
        (bootp if bootp is not None else etree.SubElement(_dhcp(node), "bootp")).set(attr, value)
    return write


def _dhcp6(node):
    return xmlpath.ensure(_ip(node, "ipv6", make=True), ["dhcp"])


def write_span(path: str) -> Callable[[Any, Any], None]:
    """An element (below <forward>) with start and end attributes from `start-end`."""
    def write(node, value: str | None) -> None:
        if not value:
            xmlpath.set_present(node, path, False)
            return
        start, end = str(value).split("-")
        el = xmlpath.ensure(node, path.split("/"))
        el.set("start", start)
        el.set("end", end)
    return write


def write_forward_devs(node, devs: list[str] | None) -> None:
    """The macvtap network's host interfaces (<forward><interface dev=>), written whole."""
    forward = node.find("forward")
    for old in ([] if forward is None else forward.findall("interface")):
        forward.remove(old)
    for dev in devs or []:
        etree.SubElement(xmlpath.ensure(node, ["forward"]), "interface", dev=dev)


def routes(node) -> list[dict]:
    return [{"address": str(ipaddress.ip_network(f"{r.get('address')}/{r.get('prefix')}", strict=False)),
             "gateway": r.get("gateway")} for r in node.findall("route")]


def write_routes(node, wanted: list[dict] | None) -> None:
    """Static routes, written whole (after the <ip> elements)."""
    for old in node.findall("route"):
        node.remove(old)
    for route in wanted or []:
        net = ipaddress.ip_network(route["address"])
        el = etree.SubElement(node, "route", address=str(net.network_address), prefix=str(net.prefixlen),
                              gateway=str(route["gateway"]))
        if net.version == 6:
            el.set("family", "ipv6")


def dot_key(node) -> str:
    """A DNS name as a key (a key holds no dot: _ stands for it; DNS names here have no _)."""
    return text(node).replace(".", "_")


def srv_key(srv) -> str:
    return f"{srv.get('service')}_{srv.get('protocol')}"


def ipv6_cidr(node) -> str:
    return str(ipaddress.IPv6Interface(f"{node.get('address')}/{node.get('prefix') or '64'}"))


def ip_key(ip) -> str:
    """An address as a key (a key holds no dot: 10.0.0.5 is 10_0_0_5)."""
    return str(ipaddress.ip_address(str(ip))).replace(".", "_")


def dns_names(host) -> list[str]:
    return [text(name) for name in host.findall("hostname")]


def write_dns_names(host, names: list[str]) -> None:
    for old in host.findall("hostname"):
        host.remove(old)
    for name in names or []:
        etree.SubElement(host, "hostname").text = name


FORWARDER = "forwarder[@addr and not(@domain)]"


def write_forwarders(node, addresses: list[str]) -> None:
    """dnsmasq's upstream servers (address forwarders), written whole; domain forwarders stay."""
    dns = xmlpath.ensure(node, ["dns"])
    for old in dns.xpath(FORWARDER):
        dns.remove(old)
    for n, addr in enumerate(addresses or []):
        dns.insert(n, etree.Element("forwarder", addr=addr))
    xmlpath.prune(dns, node)


def write_domain(node, name: str | None) -> None:
    if name is None:
        xmlpath.set_present(node, "domain", False)
        return
    domain = xmlpath.ensure(node, ["domain"])
    domain.set("name", name)
    domain.set("localOnly", "yes")


DOMAIN = {
    "type": F("@type", required=True),
    "memory": {"max": F("memory", size, write=write_size("memory"), required=True, adopt=human_size),
               "current": F("currentMemory", size, write=write_size("currentMemory"), required=True,
                            live=liverules.memory_current, adopt=human_size),
               "hotplug": {"max": F("maxMemory", size, write=write_max_memory, adopt=human_size, also=("maxMemory/@slots",)),
                           "slots": F("maxMemory/@slots", int)}},
    "vcpus": {"max": F("vcpu", number, write=write_vcpu_max, required=True),
              "current": F("vcpu/@current", int, required=True, live=liverules.vcpus_current, runtime=True)},
    "machine": F("os/type/@machine", required=True),
    "cpu": {"mode": F("cpu/@mode", write=write_cpu_mode),
            "model": F("cpu/model", write=write_cpu_model),
            "fallback": F("cpu/model/@fallback"),
            "topology": {part: F(f"cpu/topology/@{part}", int) for part in ("sockets", "dies", "cores", "threads")}},
    "cpu_features": Items("cpu/feature", "@name", {"policy": F("@policy")}, key_field="name", manifest="cpu.features",
                          parent=lambda root: xmlpath.ensure(root, ["cpu"])),
    "numa_cells": Items("cpu/numa/cell", "@id", key_field="id", manifest="cpu.numa",
                        parent=lambda root: xmlpath.ensure(root, ["cpu", "numa"]), table={
        "cpus": F("@cpus"),
        "memory": F(".", cell_memory, write=write_cell_memory, adopt=human_size),
    }),
    "cputune": {"emulatorpin": F("cputune/emulatorpin/@cpuset")},
    "vcpupin": Items("cputune/vcpupin", "@vcpu", {"cpuset": F("@cpuset")}, key_field="vcpu", manifest="cputune.vcpupin",
                     parent=lambda root: xmlpath.ensure(root, ["cputune"])),
    "balloon": F("devices/memballoon/@model", write=write_balloon),
    "iothreads": F("iothreads", number),
    "hotplug_slots": F(ROOT_PORTS, lambda first: free_root_ports(first.getroottree().getroot()),
                       write=write_root_ports, settle=True),
    "controllers": Items("devices/controller[(@type='scsi' or @type='usb' or @type='virtio-serial' or @type='sata') "
                         "and not(master)]", "@type", key_conv=controller_key, key_fields=controller_fields,
                         live=liverules.controller_hotplug, table={
        "index": F("@index", int),
        "model": F("@model"),
        "ports": F("@ports", int),
        "queues": F("driver/@queues", int),
        "iothread": F("driver/@iothread", int),
    }),
    "panic": Items("devices/panic", "@model", single=True, key_field="model"),
    "firmware": F("os/@firmware | os/loader[@type='pflash']", firmware_kind, default="bios", write=write_firmware,
                  also=("os/nvram",)),
    "boot_menu": F("os/bootmenu/@enable", yes_no, write=write_yes_no("os/bootmenu/@enable")),
    "kernel": F("os/kernel", path),
    "initrd": F("os/initrd", path),
    "cmdline": F("os/cmdline"),
    "secure_boot": F("os/firmware/feature[@name='secure-boot']/@enabled", yes_no, write=write_fw_feature("secure-boot"),
                     also=("features/smm",)),
    "enrolled_keys": F("os/firmware/feature[@name='enrolled-keys']/@enabled", yes_no,
                       write=write_fw_feature("enrolled-keys")),
    "tpm": Items("devices/tpm", "@model", single=True, key_field="model", table={
        "version": F("backend[@type='emulator']/@version", write=lambda tpm, v: xmlpath.set_value(tpm, "backend/@version", v)),
        "backend": F("backend/@type", write=write_tpm_backend),
        "device": F("backend[@type='passthrough']/device/@path",
                    write=lambda tpm, v: xmlpath.set_value(tpm, "backend/device/@path", v)),
        "secret": F("backend[@type='emulator']/encryption/@secret",
                    write=lambda tpm, v: xmlpath.set_value(tpm, "backend/encryption/@secret", v)),
    }),
    "hostdevs": Items("devices/hostdev[@mode='subsystem']", "@type", key_conv=hostdev_key, key_fields=hostdev_fields,
                      live=liverules.hotplug, table={
        "managed": F("self::*[@type='pci' or @type='usb']/@managed", yes_no, write=write_yes_no("@managed")),
        "rom_bar": F("rom/@bar", on_off, write=write_on_off("rom/@bar")),
        "display": F("@display", on_off, write=write_on_off("@display")),
        "boot_order": F("boot/@order", int),
    }),
    "boot": L("os/boot/@dev", write=write_boot),
    "disks": Items("devices/disk[@type='file' or @type='volume' or @type='block' or @type='network']", "target/@dev", {
        "device": F("@device"),
        "bus": F("target/@bus", write=write_disk_bus),
        "format": F("driver/@type", default=""),
        "volume": F("source", volume_ref, default="", write=write_disk_volume, also=("@type",)),
        "luks_secret": F("source/encryption[@format='luks']/secret/@uuid", write=write_disk_luks, derived=True),
        "path": F("source/@file", path, default="", write=write_disk_path, also=("@type",),
                  live=liverules.cdrom_media, runtime=True),
        "block": F("self::*[@type='block']/source/@dev", path, write=write_disk_block, also=("@type",)),
        "network": {
            "protocol": F("self::*[@type='network']/source/@protocol", write=write_disk_network("protocol"),
                          also=("@type",)),
            "name": F("self::*[@type='network']/source/@name", write=write_disk_network("name")),
            "hosts": F("self::*[@type='network']/source[host]", lambda src: [network_host(h) for h in src.findall("host")],
                       write=write_network_hosts),
            "auth": {"username": F("auth/@username"),
                     "secret_usage": F("auth/secret/@usage", write=write_auth_secret, also=("auth/secret/@type",))},
        },
        "wwn": F("wwn", lower),
        "shareable": F("shareable", exists, default=False),
        "iothread": F("driver/@iothread", int),
        "readonly": F("readonly", exists, default=False),
        "cache": F("driver/@cache"),
        "io": F("driver/@io"),
        "discard": F("driver/@discard"),
        "detect_zeroes": F("driver/@detect_zeroes"),
        "serial": F("serial"),
        "boot_order": F("boot/@order", int),
    }, live=liverules.hotplug, key_field="target"),
    "interfaces": Items(NICS, "mac/@address", {
        "network": F("self::*[@type='network']/source/@network", write=write_nic_source("network", "network"),
                     also=("@type",)),
        "bridge": F("self::*[@type='bridge']/source/@bridge", write=write_nic_source("bridge", "bridge"),
                    also=("@type",)),
        "direct": {"dev": F("self::*[@type='direct']/source/@dev", write=write_nic_source("direct", "dev"),
                            also=("@type",)),
                   "mode": F("self::*[@type='direct']/source/@mode", write=write_nic_source("direct", "mode"))},
        "model": F("model/@type"),
        "mtu": F("mtu/@size", int),
        "queues": F("driver/@queues", int),
        "link": F("link/@state", live=liverules.nic_update, runtime=True),
        "boot_order": F("boot/@order", int),
        "hostdev": F("self::*[@type='hostdev']/source/address", pci_address, write=write_nic_hostdev,
                     also=("@type", "@managed")),
        "portgroup": F("self::*[@type='network']/source/@portgroup", write=write_nic_source("network", "portgroup")),
        "vlan": F("vlan[tag]", nic_vlan, write=write_vlan),
        "bandwidth": {way: {part: F(f"bandwidth/{way}/@{part}", int, live=liverules.nic_update, runtime=True)
                            for part in ("average", "peak", "burst")} for way in ("inbound", "outbound")},
    }, key_conv=lower, live=liverules.hotplug, key_field="mac"),
    "graphics": Items("devices/graphics[@type='vnc' or @type='spice']", "@type", single=True, key_field="type", table={
        "listen": F("@listen | listen[@type='address']/@address | listen[@type='none']/@type", default="default",
                    write=write_listen, also=("listen[@type='address' or @type='none']",)),
        "port": F("@port", int, default=-1, write=write_port, also=("@autoport",),
                  adopt=lambda port: port if port > 0 else None),
        "keymap": F("@keymap"),
        "password": F("@passwd", sensitive, secret=True, live=liverules.graphics_password),
        "gl": F("gl/@enable", yes_no, write=write_yes_no("gl/@enable")),
        "streaming": F("streaming/@mode"),
    }),
    "video": Items("devices/video", "model/@type", single=True, key_field="model", table={
        "heads": F("model/@heads", int),
        "vram": F("model/@vram", kib_bytes, write=write_kib("model/@vram"), adopt=human_size),
        "accel3d": F("model/acceleration/@accel3d", yes_no, write=write_yes_no("model/acceleration/@accel3d")),
    }),
    "inputs": Items("devices/input[@bus='usb' or @bus='virtio']", "@type", key_field="type", table={
        "bus": F("@bus"),
    }),
    "sound": Items("devices/sound", "@model", single=True, key_field="model"),
    "usb_redirect": F(REDIRDEV, count_redirdev, default=0, write=write_redirdev),
    "spice_agent": F(f"devices/channel[target/@name='{SPICE_AGENT}']", exists, default=False,
                     write=write_channel("spicevmc", SPICE_AGENT)),
    "console": F(f"devices/{SERIAL0}", exists, default=False, write=write_console, also=(f"devices/{CONSOLE0}",)),
    "serials": Items("devices/serial", "target/@port", key_field="port", table={
        "type": F("@type", write=write_serial_type),
        "path": F("source/@path"),
        "host": F("source/@host"),
        "service": F("source/@service", int),
        "mode": F("source/@mode"),
        "protocol": F("protocol/@type"),
        "log": F("log/@file"),
    }),
    "guest_agent": F(f"devices/channel[target/@name='{GUEST_AGENT}']", exists, default=False,
                     write=write_channel("unix", GUEST_AGENT)),
    "features": {
        "acpi": F("features/acpi", exists, default=False),
        "apic": F("features/apic", exists, default=False),
        "pae": F("features/pae", exists, default=False),
        "vmport": F("features/vmport/@state", on_off, write=write_state("features/vmport")),
        "kvm_hidden": F("features/kvm/hidden/@state", on_off, write=write_state("features/kvm/hidden")),
        "smm": F("features/smm/@state", on_off, write=write_state("features/smm")),
        "pmu": F("features/pmu/@state", on_off, write=write_state("features/pmu")),
        "ioapic": F("features/ioapic/@driver"),
        "hyperv": {
            "relaxed": F("features/hyperv/relaxed/@state", on_off, write=write_state("features/hyperv/relaxed")),
            "vapic": F("features/hyperv/vapic/@state", on_off, write=write_state("features/hyperv/vapic")),
            "vpindex": F("features/hyperv/vpindex/@state", on_off, write=write_state("features/hyperv/vpindex")),
            "runtime": F("features/hyperv/runtime/@state", on_off, write=write_state("features/hyperv/runtime")),
            "synic": F("features/hyperv/synic/@state", on_off, write=write_state("features/hyperv/synic")),
            "stimer": F("features/hyperv/stimer/@state", on_off, write=write_state("features/hyperv/stimer")),
            "reset": F("features/hyperv/reset/@state", on_off, write=write_state("features/hyperv/reset")),
            "frequencies": F("features/hyperv/frequencies/@state", on_off, write=write_state("features/hyperv/frequencies")),
            "tlbflush": F("features/hyperv/tlbflush/@state", on_off, write=write_state("features/hyperv/tlbflush")),
            "ipi": F("features/hyperv/ipi/@state", on_off, write=write_state("features/hyperv/ipi")),
            "spinlocks": F("features/hyperv/spinlocks[@state='on']/@retries", int, write=write_spinlocks),
        },
    },
    "clock_offset": F("clock/@offset", manifest="clock.offset"),
    "clock_timers": Items("clock/timer", "@name", key_field="name", parent=lambda root: xmlpath.ensure(root, ["clock"]),
                          manifest="clock.timers", table={
        "tickpolicy": F("@tickpolicy"),
        "present": F("@present", yes_no, write=write_yes_no("@present")),
    }),
    "on_poweroff": F("on_poweroff"),
    "on_reboot": F("on_reboot"),
    "on_crash": F("on_crash"),
    "memory_backing": {
        "source": F("memoryBacking/source/@type"),
        "access": F("memoryBacking/access/@mode"),
        "hugepages": F("memoryBacking/hugepages", exists),
        "nosharepages": F("memoryBacking/nosharepages", exists, default=False),
    },
    "filesystems": Items("devices/filesystem[@type='mount']", "target/@dir", key_field="target", table={
        "source": F("source/@dir"),
        "driver": F("driver/@type", lambda n: "9p" if text(n) == "path" else text(n), default="9p",
                    write=write_fs_driver),
        "readonly": F("readonly", exists),
    }),
    "rng": Items("devices/rng", "@model", single=True, key_field="model", table={
        "backend": F("backend[@model='random']"),
    }),
    "watchdog": Items("devices/watchdog", "@model", single=True, key_field="model", table={
        "action": F("@action", default="reset"),
    }),
}

NETWORK = {
    "forward": F("forward/@mode", default="isolated", write=write_forward, required=True),
    "bridge": F("bridge/@name", required=True),
    "mtu": F("mtu/@size", int),
    "ipv4": F(IPV4, ipv4_cidr, default="", write=write_ip("ipv4"), manifest="ipv4.address"),
    "dhcp_range": F(f"{IPV4}/dhcp/range", ip_range, default="", write=write_dhcp_range("ipv4"), manifest="ipv4.dhcp.range",
                    adopt=lambda span: span.split("-") if span else None),
    "dhcp_hosts": Items(f"{IPV4}/dhcp/host", "@mac", {
        "ip": F("@ip", live=liverules.dhcp_host),
        "name": F("@name", default="", live=liverules.dhcp_host),
    }, key_conv=lower, parent=_dhcp, manifest="ipv4.dhcp.hosts", live=liverules.dhcp_host, key_field="mac"),
    "ipv6": F(IPV6, ipv6_cidr, default="", write=write_ip("ipv6"), manifest="ipv6.address"),
    "dhcp6_range": F(f"{IPV6}/dhcp/range", ip_range, default="", write=write_dhcp_range("ipv6"), manifest="ipv6.dhcp.range",
                     adopt=lambda span: span.split("-") if span else None),
    "dns_domain": F("domain/@name", write=write_domain, also=("domain/@localOnly",), manifest="dns.domain"),
    "dns_hosts": Items("dns/host", "@ip", {
        "names": F("self::host[hostname]", dns_names, write=write_dns_names),
    }, key_conv=ip_key, key_fields=lambda key: {"ip": key.replace("_", ".")}, parent=lambda root: xmlpath.ensure(root, ["dns"]),
        manifest="dns.hosts", live=liverules.dns_host),
    "dns_forwarders": F(f"dns[{FORWARDER}]", lambda dns: [f.get("addr") for f in dns.xpath(FORWARDER)], default=[],
                        write=write_forwarders, manifest="dns.forwarders"),
    "ipv4_more": F(f"self::network[{IPV4}[2]]", more_ipv4, default=[], write=write_more_ipv4,
                   manifest="ipv4.more_addresses"),
    "dhcp_ranges": F(f"{IPV4}/dhcp[range[2]]", lambda dhcp: [ip_range(r) for r in dhcp.findall("range")[1:]],
                     default=[], write=write_more_ranges, manifest="ipv4.dhcp.ranges",
                     adopt=lambda spans: [s.split("-") for s in spans] or None),
    "bootp_file": F(f"{IPV4}/dhcp/bootp/@file", write=write_bootp("file"), manifest="ipv4.dhcp.bootp.file"),
    "bootp_server": F(f"{IPV4}/dhcp/bootp/@server", write=write_bootp("server"), manifest="ipv4.dhcp.bootp.server"),
    "dhcp6_hosts": Items(f"{IPV6}/dhcp/host", "@ip", {
        "name": F("@name"),
        "id": F("@id"),
    }, key_conv=ip_key, parent=_dhcp6, manifest="ipv6.dhcp.hosts", key_field="ip"),
    "dns_txt": Items("dns/txt", "@name", {"value": F("@value")}, key_conv=dot_key,
                     key_fields=lambda key: {"name": key.replace("_", ".")}, parent=lambda root: xmlpath.ensure(root, ["dns"]),
                     manifest="dns.txt", live=liverules.dns_txt),
    "dns_srv": Items("dns/srv", ".", {
        "domain": F("@domain"),
        "target": F("@target"),
        "port": F("@port", int),
        "priority": F("@priority", int),
        "weight": F("@weight", int),
    }, key_conv=srv_key, key_fields=lambda key: dict(zip(("service", "protocol"), key.rsplit("_", 1))),
        parent=lambda root: xmlpath.ensure(root, ["dns"]), manifest="dns.srv", live=liverules.dns_srv),
    "forward_dev": F("forward[@mode='nat' or @mode='route']/@dev",      # macvtap's is its first interface
                     write=lambda node, dev: xmlpath.set_value(node, "forward/@dev", dev)),
    "nat": {"addresses": F("forward/nat/address", ip_range, write=write_span("forward/nat/address"),
                           adopt=lambda s: s.split("-")),
            "ports": F("forward/nat/port", ip_range, write=write_span("forward/nat/port"),
                       adopt=lambda s: [int(p) for p in s.split("-")])},
    "interfaces": L("forward[@mode='bridge' or @mode='vepa' or @mode='private' or @mode='passthrough']"  # nat:
                    "/interface/@dev", write=write_forward_devs),          # libvirt's copy of forward/@dev
    "pf": F("forward/pf/@dev"),
    "routes": F("self::network[route]", routes, default=[], write=write_routes),
    "portgroups": Items("portgroup", "@name", {
        "default": F("@default", yes_no, default=False, write=write_yes_no("@default")),
        "vlan": F("vlan[tag]", nic_vlan, write=write_vlan),
        "bandwidth": {way: {part: F(f"bandwidth/{way}/@{part}", int) for part in ("average", "peak", "burst")}
                      for way in ("inbound", "outbound")},
    }, parent=lambda root: root, key_field="name", live=liverules.portgroup),
    "bandwidth": {way: {part: F(f"bandwidth/{way}/@{part}", int) for part in ("average", "peak", "burst")}
                  for way in ("inbound", "outbound")},
    "virtualport": F("virtualport/@type"),
}

DEVICE_PATHS = "source/device[starts-with(@path, '/')]"       # block devices (an iSCSI target is an IQN)
ISCSI_TARGET = "source/device[not(starts-with(@path, '/'))]"


def write_pool_devices(pool, paths: list[str] | None) -> None:
    """The pool's source devices: those kept keep what libvirt put in them (free extents), new
    ones follow the last."""
    source = xmlpath.ensure(pool, ["source"])
    wanted = list(paths or [])
    for el in pool.xpath(DEVICE_PATHS):
        if el.get("path") not in wanted:
            source.remove(el)
    have = [el.get("path") for el in pool.xpath(DEVICE_PATHS)]
    for path_ in wanted:
        if path_ not in have:
            new = etree.Element("device", path=path_)
            kept = pool.xpath(DEVICE_PATHS)
            if kept:
                kept[-1].addnext(new)
            else:
                source.insert(0, new)


def write_iscsi_target(pool, iqn: str | None) -> None:
    for el in pool.xpath(ISCSI_TARGET):
        el.getparent().remove(el)
    if iqn:
        source = xmlpath.ensure(pool, ["source"])
        host = source.find("host")
        new = etree.Element("device", path=iqn)
        host.addnext(new) if host is not None else source.insert(0, new)


def write_pool_auth(attr_path: str) -> Callable[[Any, Any], None]:
    """A login of an iSCSI (CHAP) or RBD (cephx) pool; the auth type follows the pool's type."""
    def write(pool, value: str | None) -> None:
        xmlpath.set_value(pool, attr_path, value)
        auth = pool.find("source/auth")
        if auth is not None:
            auth.set("type", "ceph" if pool.get("type") == "rbd" else "chap")
    return write


POOL = {
    "type": F("@type", required=True),
    "path": F("target/path", path, required=True),
    "source": {
        "devices": L(f"{DEVICE_PATHS}/@path", write=write_pool_devices),
        "format": F("source/format/@type"),
        "host": F("source/host/@name"),
        "port": F("source/host/@port", int),
        "dir": F("source/dir/@path"),
        "name": F("source/name"),
        "target": F(f"{ISCSI_TARGET}/@path", write=write_iscsi_target),
        "initiator": F("source/initiator/iqn/@name"),
        "auth": {
            "username": F("source/auth/@username", write=write_pool_auth("source/auth/@username")),
            "secret": F("source/auth/secret/@usage", write=write_pool_auth("source/auth/secret/@usage")),
        },
    },
    "permissions": {
        "mode": F("target/permissions/mode"),
        "owner": F("target/permissions/owner", number),
        "group": F("target/permissions/group", number),
    },
}

def volume_format(node) -> str:
    """A volume's format: libvirt's probe names a file that holds an ISO 9660 image (a cloud-init
    seed) `iso`; it is a raw image (QEMU reads it as raw)."""
    found = text(node)
    return "raw" if found == "iso" else found


VOLUME = {
    "capacity": F("capacity", size, required=True, adopt=human_size),
    "format": F("target/format/@type", volume_format, default="raw", required=True),
    "backing": F("backingStore/path", path),
    "encryption": F("target/encryption/@format", manifest="encryption.format"),
    "permissions": {
        "mode": F("target/permissions/mode"),
        "owner": F("target/permissions/owner", number),
        "group": F("target/permissions/group", number),
    },
}

USAGE_ID = {"ceph": "name", "iscsi": "target", "tls": "name", "vtpm": "name", "volume": "volume"}


def write_usage(node, usage: str) -> None:
    """Another usage type, keeping the usage name (iSCSI's is in <target>, a volume's in <volume>)."""
    el = xmlpath.ensure(node, ["usage"])
    name = next((c.text for c in el if c.tag in USAGE_ID.values()), None) or ""
    for child in list(el):
        el.remove(child)
    el.set("type", usage)
    etree.SubElement(el, USAGE_ID[usage]).text = name


SECRET = {
    "usage": F("usage/@type", write=write_usage, required=True),
    "description": F("description"),
    "private": F("@private", yes_no, default=False, write=write_yes_no("@private")),
    "ephemeral": F("@ephemeral", yes_no, default=False, write=write_yes_no("@ephemeral")),
}

# A host bridge: the tool's own document of it (hostbridge.py makes it from the host's links).
BRIDGE = {
    "ports": L("port/@name"),
    "stp": F("stp/@state", on_off, default=False),
    "forward_delay": F("stp/@forward_delay", int),
    "mtu": F("mtu/@size", int, adopt=lambda mtu: mtu if mtu != 1500 else None),      # adopt leaves out
    "vlan_filtering": F("vlan_filtering/@state", on_off, adopt=lambda on: on or None),  # the kernel's defaults
    "addresses": L("ip/@cidr"),
    "gateway": F("route[@family='ipv4']/@gateway"),
    "gateway6": F("route[@family='ipv6']/@gateway"),
    "persisted": F("persisted/@digest", derived=True),
}

TABLES = {"Bridge": BRIDGE, "Secret": SECRET, "Guest": DOMAIN, "Network": NETWORK, "StoragePool": POOL, "Volume": VOLUME}


def declaration(kind: str, parts):
    """The declaration of the field at `parts` (F or L; a keyed collection or one whole item: its
    Items; a group: its dict), or None when nothing is declared there."""
    table, i = TABLES[kind], 0
    while i < len(parts):
        spec = table.get(parts[i]) if isinstance(table, dict) else None
        if isinstance(spec, dict):
            table, i = spec, i + 1
        elif isinstance(spec, Items):
            if len(parts) <= i + 2:
                return spec
            table, i = spec.table, i + 2
        else:
            return spec
    return table if i else None


def live_rule(kind: str, parts) -> Callable | None:
    """The live rule declared for the field at `parts` (a whole keyed item: its collection's)."""
    spec = declaration(kind, parts)
    return getattr(spec, "live", None)


def is_default(kind: str, parts, value) -> bool:
    """`value` is what the field at `parts` holds when libvirt's XML leaves it out (an empty
    collection, or the declared default): nothing worth showing for a new object."""
    if value in ({}, []):
        return True
    spec = declaration(kind, parts)
    return isinstance(spec, F) and spec.default is not None and value == spec.default


class Key(str):
    """An item of a manifest's list named by its key (the manifest does not list it)."""


def manifest_location(kind: str, parts, index: dict) -> list:
    """Where a field stands in a manifest's spec, as keys and list positions: ['memory', 'max'],
    ['disks', 1, 'path'], ['ipv4', 'dhcp', 'hosts', 0, 'ip'], ['graphics', 'listen']. `index` maps
    (collection, key) to the item's position in the manifest's list; an item the manifest does not
    list is named by its key, ['disks', 'vdb']."""
    table, out, i = TABLES[kind], [], 0
    while i < len(parts):
        name = parts[i]
        if name == "xml_edits" and i == 0:             # the escape hatch's edits (escape.py): `xml[N]`
            return ["xml", int(parts[1])] if len(parts) > 1 else ["xml"]
        spec = table.get(name) if isinstance(table, dict) else None
        if isinstance(spec, dict):
            out.append(name)
            table, i = spec, i + 1
        elif isinstance(spec, Items):
            out += (spec.manifest or name).split(".")
            if i + 1 < len(parts) and not spec.single:
                n = index.get((name, parts[i + 1]))
                out.append(n if n is not None else Key(parts[i + 1]))
            table, i = spec.table, i + 2
        else:
            out += (spec.manifest if isinstance(spec, F) and spec.manifest else name).split(".")
            i += 1
    return out


def manifest_path(kind: str, parts, index: dict) -> str:
    """A field's manifest location as a user reads it: `memory.max`, `disks[1].path`,
    `ipv4.dhcp.hosts[0].ip`, `graphics.listen`, `disks[vdb]` (manifest_location)."""
    text = ""
    for part in manifest_location(kind, parts, index):
        if isinstance(part, (int, Key)):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _required(table: dict, prefix: str = "") -> set[str]:
    out = set()
    for name, spec in table.items():
        if isinstance(spec, dict):
            out |= _required(spec, f"{prefix}{name}.")
        elif isinstance(spec, F) and spec.required:
            out.add(prefix + name)
    return out


# Fields that are never reset when they leave the manifest (libvirt needs a value).
REQUIRED = {kind: _required(table) for kind, table in TABLES.items()}


@functools.lru_cache(maxsize=None)
def xp(path: str) -> etree.XPath:
    """`path` compiled once (the declarations are read for every object of every run)."""
    return etree.XPath(path)


def _is_name(text: str) -> bool:
    """An XPath name test without a prefix (an ASCII NCName)."""
    return text.isascii() and (text[:1].isalpha() or text[:1] == "_") and all(c.isalnum() or c in "_.-" for c in text)


def _skeleton(path: str) -> list[list[str]] | None:
    """The branches of `path` (split at its top-level `|`) as their steps without predicates: a
    predicate only narrows a step, so `path` matches nothing where no branch's steps match. None
    when a step is no child, attribute (last) or self step by name: a function, an axis, `..`, `//`."""
    branches, steps, head, depth, quote, closed = [], [], "", 0, "", False
    for ch in path:
        if quote:
            quote = "" if ch == quote else quote
        elif depth:
            quote = ch if ch in "'\"" else ""
            depth += (ch == "[") - (ch == "]")
        elif ch == "[":
            depth, closed = 1, True
        elif ch in "/|":
            steps.append(head.strip())
            if ch == "|":
                branches.append(steps)
                steps = []
            head, closed = "", False
        elif closed and not ch.isspace():
            return None
        else:
            head += ch
    if depth or quote:
        return None
    branches.append(steps + [head.strip()])
    for steps in branches:
        for i, step in enumerate(steps):
            name = step[1:] if step.startswith("@") and i == len(steps) - 1 else step.removeprefix("self::")
            if step not in (".", "self::*") and not _is_name(name):
                return None
    return [[s for s in steps if s not in (".", "self::*")] for steps in branches]


class _Trie:
    """The child, self and attribute steps (by name, predicates left out) of a table's paths below
    a context element. `walk` notes the fields (indices) whose path may match: with the elements it
    matched when the path is nothing but element names (they are what XPath finds, in document
    order), else None (the path is evaluated)."""

    def __init__(self):
        self.exact: list[int] = []                   # fields whose path is these element steps
        self.maybe: dict[int, None] = {}             # fields whose path (or a branch) ends here
        self.tags: dict[str, _Trie] = {}             # child elements by name
        self.selfs: dict[str, _Trie] = {}            # self::name
        self.attrs: dict[str, dict[int, None]] = {}  # attribute name -> fields

    def add(self, steps: list[str], index: int, exact: bool) -> None:
        node = self
        for step in steps:
            if step.startswith("@"):
                node.attrs.setdefault(step[1:], {})[index] = None
                return
            branch = node.selfs if step.startswith("self::") else node.tags
            node = branch.setdefault(step.removeprefix("self::"), _Trie())
        if exact:
            node.exact.append(index)
        else:
            node.maybe[index] = None

    def walk(self, el, found: dict) -> None:
        for index in self.exact:
            found.setdefault(index, []).append(el)
        if self.maybe:
            found.update(self.maybe)
        if self.attrs:
            for name in el.keys():
                if name in self.attrs:
                    found.update(self.attrs[name])
        if self.tags:
            for child in el:
                sub = self.tags.get(child.tag)
                if sub is not None:
                    sub.walk(child, found)
        if self.selfs and el.tag in self.selfs:
            self.selfs[el.tag].walk(el, found)


class _Plan:
    """How one table is read below an element. One walk of its trie tells which paths may match;
    the fields of the others keep what they read as when nothing matches (F: its default, L: [],
    Items: {}), copied from a template, and only the rest are read, in table order."""

    def __init__(self, table: dict):
        self.trie = _Trie()
        self.groups: list[tuple] = []       # (parent group, name, template, [(name, new empty value)])
        self.fields: list[tuple] = []       # (group, name, spec, xpath, key xpath, plan of an item's table)
        self.always: list[int] = []         # fields whose path is not walked (a function, `..`)
        self._compile(table, None, "")

    def _compile(self, table: dict, parent: int | None, name: str) -> None:
        group, template, empty = len(self.groups), {}, []
        self.groups.append((parent, name, template, empty))
        for name, spec in table.items():
            template[name] = spec.default if isinstance(spec, F) else None
            if isinstance(spec, dict):
                self._compile(spec, group, name)
                continue
            index, items = len(self.fields), isinstance(spec, Items)
            if not isinstance(spec, F):
                empty.append((name, dict if items else list))
            self.fields.append((group, name, spec, xp(spec.xpath), xp(spec.key) if items else None,
                                _Plan(spec.table) if items else None))
            branches = _skeleton(spec.xpath)
            if branches is None:
                self.always.append(index)
                continue
            exact = len(branches) == 1 and "[" not in spec.xpath and "@" not in spec.xpath   # element names only
            for steps in branches:
                self.trie.add(steps, index, exact)

    def read(self, node) -> dict:
        found: dict[int, list | None] = dict.fromkeys(self.always)
        self.trie.walk(node, found)
        out = []
        for parent, name, template, empty in self.groups:
            values = template.copy()
            for field_name, new in empty:
                values[field_name] = new()
            if parent is not None:
                out[parent][name] = values
            out.append(values)
        for index in sorted(found):
            group, name, spec, path, key, plan = self.fields[index]
            matched = path(node) if found[index] is None else found[index]
            if isinstance(spec, F):
                out[group][name] = spec.conv(matched[0]) if matched else spec.default
            elif isinstance(spec, L):
                out[group][name] = [spec.conv(n) for n in matched]
            else:
                out[group][name] = {spec.key_conv(hit[0]): plan.read(el) for el in matched for hit in [key(el)] if hit}
        return out[0]


@functools.lru_cache(maxsize=None)
def _plan(kind: str) -> _Plan:
    return _Plan(TABLES[kind])


_PARSERS = threading.local()


def _touched(table: dict, node, out: set) -> None:
    """Collect the elements and (element, attribute) pairs the declarations read below `node`."""
    for spec in table.values():
        if isinstance(spec, dict):
            _touched(spec, node, out)
            continue
        if isinstance(spec, Items):
            for el in xp(spec.xpath)(node):
                out.add(el)
                for key in xp(spec.key)(el):
                    out.add((key.getparent(), key.attrname) if getattr(key, "is_attribute", False) else key)
                _touched(spec.table, el, out)
            continue
        for found in [f for path in (spec.xpath, *getattr(spec, "also", ())) for f in xp(path)(node)]:
            if getattr(found, "is_attribute", False):
                out.add((found.getparent(), found.attrname))
            elif isinstance(found, etree._Element):
                out.add(found)
                out.update((found, a) for a in found.attrib)
                out.update(c for c in found.iter() if spec.conv is not exists)


_IDENTITY = ("name", "uuid", "metadata")


def unmanaged(kind: str, xml: str | etree._Element) -> list[str]:
    """Parts of a definition no field manages (kept as they are on every update), as paths
    without positions and with counts: ['features', 'devices/controller x7', 'os/@firmware', ...]."""
    root = parse(xml)
    touched: set = set()
    _touched(TABLES[kind], root, touched)
    holders = {t[0] if isinstance(t, tuple) else t for t in touched}
    inside = holders | {a for el in holders for a in el.iterancestors()}
    counts: dict[str, int] = {}

    def note(path: str) -> None:
        counts[path] = counts.get(path, 0) + 1

    def walk(el, path: str) -> None:
        for attr in el.attrib:
            if (el, attr) not in touched:
                note(f"{path}/@{attr}" if path else f"@{attr}")
        for child in el:
            if not isinstance(child.tag, str) or (el is root and child.tag in _IDENTITY):
                continue
            sub = f"{path}/{child.tag}" if path else child.tag
            if child in inside:
                walk(child, sub)
            else:
                note(sub)

    walk(root, "")
    return [f"{p} x{n}" if n > 1 else p for p, n in sorted(counts.items())]


def unmanaged_items(kind: str, live: dict, managed: dict, exclusive=()) -> list[str]:
    """Repeated elements on the host that the manifest neither states nor stated at the last
    apply (a disk added by hand): `disks[vdz]`. `live` and `managed` are read values (fields.read);
    an exclusive collection has none (apply removes them)."""
    out = []
    for name, spec in TABLES[kind].items():
        if isinstance(spec, Items) and name not in exclusive:
            for key in sorted(set(live.get(name) or {}) - set(managed.get(name) or {})):
                out.append(manifest_path(kind, [name, key], {}))
    return out


def parse(xml: str | etree._Element) -> etree._Element:
    """An element from XML text (an element is passed through). XML from a host is data: no
    entity is expanded, nothing is fetched, lxml's size limits hold."""
    if isinstance(xml, etree._Element):
        return xml
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                                                   no_network=True, load_dtd=False)
    return etree.fromstring(xml.encode(), parser)


def read(kind: str, xml: str | etree._Element) -> dict:
    """Canonical fields of one object of `kind` from its XML."""
    values = _plan(kind).read(parse(xml))
    if kind == "Guest":
        # libvirt omits current= when it equals the maximum, and adds currentMemory.
        if values["vcpus"]["current"] is None:
            values["vcpus"]["current"] = values["vcpus"]["max"]
        if values["memory"]["current"] is None:
            values["memory"]["current"] = values["memory"]["max"]
    return values


def is_uuid(text: str) -> bool:
    try:
        return str(uuid_module.UUID(text)) == text.lower()
    except ValueError:
        return False


def uuid_of(xml: str | etree._Element) -> str | None:
    found = parse(xml).xpath("uuid/text()")
    return str(found[0]).strip() if found else None
