"""Adoption: a manifest written from an object's live definition (pure).

Only what the models can express is adopted; an object with parts the tool would drop on its
next redefine (other interface or graphics types, UEFI loader, IPv6, DNS entries...) is refused,
so adopting never loses configuration."""
from __future__ import annotations

import io

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from . import fields
from .errors import ReconcilerError
from .units import human_size

# Parts of a definition the tool does not model yet and would not keep on a redefine.
UNSUPPORTED = {
    "Guest": {
        "devices/interface[@type!='network']": "interfaces other than type network",
        "devices/graphics[@type!='vnc']": "graphics other than VNC",
        "devices/disk[@type!='file' and @type!='volume']": "disks other than files and volumes",
        "devices/serial[@type!='pty']": "serial ports other than a pty",
        "devices/*/boot": "per-device boot order",
        "os/*[not(self::type or self::boot)]": "firmware or direct kernel boot (<os> loader, nvram, kernel...)",
    },
    "Network": {
        "ip[@family='ipv6']": "IPv6 addresses",
        "ip[not(@family) or @family='ipv4'][position() > 1]": "more than one IPv4 address",
        "ip/dhcp/range[position() > 1]": "more than one DHCP range",
        "ip/dhcp/bootp": "DHCP boot options",
        "dns/*": "DNS entries",
        "domain": "a DNS domain",
        "portgroup": "port groups",
        "route": "static routes",
        "forward/*": "forward interfaces or NAT settings",
        "forward[@dev]": "a forward device",
        "virtualport | bandwidth | vlan": "virtual port, bandwidth or VLAN settings",
    },
    "StoragePool": {"self::node()[@type!='dir']": "pool types other than dir"},
    "Volume": {"target/format[@type!='qcow2' and @type!='raw']": "formats other than qcow2 and raw",
               "backingStore/path": "a backing store"},
}


def unsupported(kind: str, xml: str) -> list[str]:
    root = fields.parse(xml)
    return [why for xpath, why in UNSUPPORTED[kind].items() if root.xpath(xpath)]


def _guest(values: dict, root, active: bool, autostart: bool) -> dict:
    spec: dict = {"state": "running" if active else "shutoff", "autostart": autostart, "type": values["type"],
                  "vcpus": {"current": values["vcpus"]["current"], "max": values["vcpus"]["max"]},
                  "memory": {"current": human_size(values["memory"]["current"]),
                             "max": human_size(values["memory"]["max"])},
                  "machine": values["machine"], "boot": values["boot"] or ["hd"], "console": values["console"]}
    if values["cpu"]["mode"] in ("host-model", "host-passthrough", "maximum"):
        spec["cpu"] = {"mode": values["cpu"]["mode"]}
    spec["disks"] = []
    for target, d in values["disks"].items():
        disk = {"device": d["device"], "bus": d["bus"], "target": target, "format": d["format"] or "raw",
                "readonly": d["readonly"]}
        if d["volume"]:
            disk["volume"] = d["volume"]
        elif d["path"]:
            disk["path"] = d["path"]
        spec["disks"].append(disk)
    spec["interfaces"] = [{"network": n["network"], "mac": mac, "model": n["model"] or "rtl8139"}
                          for mac, n in values["interfaces"].items()]
    for gtype, g in values["graphics"].items():
        graphics = {"type": gtype, "listen": g["listen"] or root.xpath("string(devices/graphics/listen/@address)")
                    or "127.0.0.1"}
        if g["port"] and g["port"] > 0 and root.xpath("devices/graphics[@autoport='no']"):
            graphics["port"] = g["port"]
        spec["graphics"] = graphics
    return spec


def _network(values: dict, root, active: bool, autostart: bool) -> dict:
    spec: dict = {"forward": values["forward"], "autostart": autostart}
    if values["bridge"]:
        spec["bridge"] = values["bridge"]
    if values["mtu"]:
        spec["mtu"] = values["mtu"]
    if values["ipv4"]:
        ipv4: dict = {"address": values["ipv4"]}
        hosts = [{"mac": mac, "ip": h["ip"], **({"name": h["name"]} if h["name"] else {})}
                 for mac, h in values["dhcp_hosts"].items()]
        if values["dhcp_range"] or hosts:
            ipv4["dhcp"] = {"hosts": hosts}
            if values["dhcp_range"]:
                ipv4["dhcp"]["range"] = values["dhcp_range"].split("-")
        spec["ipv4"] = ipv4
    return spec


def _pool(values: dict, root, active: bool, autostart: bool) -> dict:
    return {"type": values["type"], "path": values["path"], "autostart": autostart}


def _volume(values: dict, root, active: bool, autostart: bool) -> dict:
    return {"capacity": human_size(values["capacity"]), "format": values["format"]}


_SPECS = {"Guest": _guest, "Network": _network, "StoragePool": _pool, "Volume": _volume}


def document(kind: str, name: str, host: str, xml: str, active: bool, autostart: bool) -> dict:
    """The manifest document of a live object; ReconcilerError when parts cannot be expressed."""
    problems = unsupported(kind, xml)
    if problems:
        raise ReconcilerError(f"{kind}/{name} cannot be adopted without losing configuration the "
                              f"tool does not model yet: {', '.join(problems)}")
    root = fields.parse(xml)
    spec = _SPECS[kind](fields.read(kind, root), root, active, autostart)
    meta = {"name": name, "host": host}
    if kind == "Volume":
        pool, _, meta["name"] = name.partition("/")
        spec = {"pool": pool, **spec}
    return {"kind": kind, "metadata": meta, "spec": spec}


def _quoted(value):
    """Quote strings with ':' (MACs) so every YAML parser reads them as strings."""
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return DoubleQuotedScalarString(value) if isinstance(value, str) and ":" in value else value


def yaml_text(doc: dict) -> str:
    doc = _quoted(doc)
    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 4096
    yaml.dump(doc, out)
    return out.getvalue()
