"""Field <-> XPath tables: the one place that reads each element of libvirt XML back into fields.

The same reader parses the rendered (desired) XML and the XML read from libvirt, so both sides
of a diff are normalised by the same code. A table maps a field name to:
  F(xpath, conv, default)   one value (first match) converted by `conv`
  L(xpath, conv)            a list of values, in document order
  Items(xpath, key, table)  repeated elements as a dict keyed by `key` (never by position)
  a nested dict             a group of fields
"""
from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from lxml import etree

from .units import libvirt_size


def text(node) -> str:
    return (node.text or "").strip() if isinstance(node, etree._Element) else str(node)


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


@dataclass(frozen=True)
class L:
    xpath: str
    conv: Callable[[Any], Any] = text


@dataclass(frozen=True)
class Items:
    xpath: str
    key: str
    table: dict = field(default_factory=dict)
    key_conv: Callable[[Any], Any] = text


IPV4 = "ip[not(@family) or @family='ipv4']"

DOMAIN = {
    "type": F("@type"),
    "memory": {"max": F("memory", size), "current": F("currentMemory", size)},
    "vcpus": {"max": F("vcpu", lambda n: int(text(n))), "current": F("vcpu/@current", int)},
    "machine": F("os/type/@machine"),
    "cpu": {"mode": F("cpu/@mode")},
    "boot": L("os/boot/@dev"),
    "disks": Items("devices/disk", "target/@dev", {
        "device": F("@device"),
        "bus": F("target/@bus"),
        "format": F("driver/@type", default=""),
        "volume": F("source", volume_ref, default=""),
        "path": F("source/@file", path, default=""),
        "readonly": F("readonly", exists, default=False),
    }),
    "interfaces": Items("devices/interface[@type='network']", "mac/@address", {
        "network": F("source/@network"),
        "model": F("model/@type"),
    }, key_conv=lower),
    "graphics": Items("devices/graphics", "@type", {
        "listen": F("@listen", default=""),
        "port": F("@port", int, default=-1),
    }),
    "console": F("devices/serial[@type='pty']", exists, default=False),
}

NETWORK = {
    "forward": F("forward/@mode", default="isolated"),
    "bridge": F("bridge/@name"),
    "mtu": F("mtu/@size", int),
    "ipv4": F(IPV4, ipv4_cidr, default=""),
    "dhcp_range": F(f"{IPV4}/dhcp/range", ip_range, default=""),
    "dhcp_hosts": Items(f"{IPV4}/dhcp/host", "@mac", {
        "ip": F("@ip"),
        "name": F("@name", default=""),
    }, key_conv=lower),
}

POOL = {
    "type": F("@type"),
    "path": F("target/path", path),
}

VOLUME = {
    "capacity": F("capacity", size),
    "format": F("target/format/@type", default="raw"),
}

TABLES = {"Guest": DOMAIN, "Network": NETWORK, "StoragePool": POOL, "Volume": VOLUME}


def _read(table: dict, node) -> dict:
    out: dict[str, Any] = {}
    for name, spec in table.items():
        if isinstance(spec, dict):
            out[name] = _read(spec, node)
        elif isinstance(spec, F):
            found = node.xpath(spec.xpath)
            out[name] = spec.conv(found[0]) if found else spec.default
        elif isinstance(spec, L):
            out[name] = [spec.conv(n) for n in node.xpath(spec.xpath)]
        else:
            out[name] = {spec.key_conv(el.xpath(spec.key)[0]): _read(spec.table, el)
                         for el in node.xpath(spec.xpath) if el.xpath(spec.key)}
    return out


_PARSERS = threading.local()


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
    values = _read(TABLES[kind], parse(xml))
    if kind == "Guest":
        # libvirt omits current= when it equals the maximum, and adds currentMemory.
        if values["vcpus"]["current"] is None:
            values["vcpus"]["current"] = values["vcpus"]["max"]
        if values["memory"]["current"] is None:
            values["memory"]["current"] = values["memory"]["max"]
    return values


def uuid_of(xml: str | etree._Element) -> str | None:
    found = parse(xml).xpath("uuid/text()")
    return str(found[0]).strip() if found else None
