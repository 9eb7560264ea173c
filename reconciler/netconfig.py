"""Persistent configuration of a host Linux bridge (the Bridge kind) for ifupdown,
systemd-networkd, NetworkManager (keyfiles) and wicked (ifcfg): validation, rendering with the
templates in templates/netconfig/, and writes that touch only the tool's own files.

Every file starts with the ownership marker line. `runtime` keeps nothing on disk.

Addressing, the same on every backend where the backend can say it:
- `none`: no IP configuration from the tool (networkd and NM also turn IPv6 link-local off,
  wicked BOOTPROTO='none' is L2 only; ifupdown `inet manual` leaves the kernel's defaults);
- `dhcp`: DHCPv4 plus IPv6 autoconfiguration from router advertisements;
- `static`: exactly `addresses`, no router advertisements taken (ifupdown and wicked leave
  IPv6 to the kernel when no IPv6 address is listed).

MAC (`mac_from`): ifupdown's `bridge_hw` names the port and the bridge hook reads its MAC at
ifup. networkd (`[NetDev] MACAddress=`), NetworkManager (`ethernet.cloned-mac-address`) and
wicked (`LLADDR`) take an address only, so `files()` needs the port's MAC read from the host
(`macs`); without it they would keep their own default (networkd and udev: a MAC hashed from
the bridge name and machine id; the kernel: the lowest port MAC), which loses the DHCP lease.

Ports are NICs or VLANs `parent.VID`. A bond port must be defined by the host's own
configuration (the contract has no bond settings): this module writes an Ethernet-style port
file for every non-VLAN port.
"""
from __future__ import annotations

import ipaddress
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import jinja2

from .errors import ReconcilerError
from .identity import object_uuid
from .render import TEMPLATES

BACKENDS = ("ifupdown", "networkd", "nm", "wicked", "runtime")
ADDRESSING = ("none", "dhcp", "static")

IFUPDOWN_DIR = "/etc/network/interfaces.d"
NETWORKD_DIR = "/etc/systemd/network"
NM_DIR = "/etc/NetworkManager/system-connections"
WICKED_DIR = "/etc/sysconfig/network"

MARKER = "# managed by virt-reconcile (instance {instance}): Bridge {name}; edits are overwritten"
_MARKER_RE = re.compile(
    r"# managed by virt-reconcile \(instance ([A-Za-z0-9_.-]+)\): Bridge (\S+); edits are overwritten")
_NM_OWNER_RE = re.compile(r"^virt-reconcile\.owner=([A-Za-z0-9_.-]+)/(\S+)$", re.M)
_IFNAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}")
_INSTANCE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_IFUPDOWN_FILE = re.compile(r"[A-Za-z0-9_-]+")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_PRIVATE = 0o600
_PUBLIC = 0o644


class NetconfigError(ReconcilerError, ValueError):
    """A bridge the chosen backend cannot express, or a file the tool must not touch."""


@dataclass(frozen=True)
class BridgeConfig:
    """The wanted persistent state of one host bridge (the input contract)."""

    name: str
    ports: tuple[str, ...]
    stp: bool = False
    forward_delay: int | None = None
    mtu: int | None = None
    vlan_filtering: bool | None = None
    address: str = "none"
    addresses: tuple[str, ...] = ()
    gateway: str | None = None
    gateway6: str | None = None
    dns: tuple[str, ...] = ()
    mac_from: str | None = None
    instance: str = "default"


# --- validation -------------------------------------------------------------------------------

def vlan_of(port: str) -> tuple[str, int] | None:
    """(parent, VID) of a VLAN port named `parent.VID`; None for any other port."""
    parent, dot, vid = port.partition(".")
    return (parent, int(vid)) if dot and vid.isdigit() else None


def _name_problems(bridge: BridgeConfig) -> Iterator[str]:
    if not _INSTANCE.fullmatch(bridge.instance):
        yield f"instance {bridge.instance!r} is not a plain name"
    for name in (bridge.name, *bridge.ports):
        if not _IFNAME.fullmatch(name):
            yield f"{name!r} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)"


def _port_problems(bridge: BridgeConfig) -> Iterator[str]:
    if len(set(bridge.ports)) != len(bridge.ports):
        yield "a port is listed twice"
    if bridge.name in bridge.ports:
        yield "the bridge cannot be its own port"
    for port in bridge.ports:
        if "." in port and not _vlan_ok(port):
            yield f"port {port} must be a VLAN named parent.VID (VID 1-4094, parent without a dot)"
    if bridge.mac_from is not None and bridge.mac_from not in bridge.ports:
        yield f"mac_from {bridge.mac_from} is not a port"


def _vlan_ok(port: str) -> bool:
    vlan = vlan_of(port)
    return vlan is not None and "." not in vlan[0] and bool(vlan[0]) and 1 <= vlan[1] <= 4094


def _link_problems(bridge: BridgeConfig) -> Iterator[str]:
    delay, low = bridge.forward_delay, 2 if bridge.stp else 0
    if delay is not None and not low <= delay <= 30:
        yield f"forward_delay {delay} is out of range ({low}-30 s with STP {'on' if bridge.stp else 'off'})"
    if bridge.mtu is not None and not 68 <= bridge.mtu <= 65535:
        yield f"mtu {bridge.mtu} is out of range (68-65535)"
    elif bridge.mtu is not None and bridge.mtu < 1280 and _family(bridge, 6):
        yield f"mtu {bridge.mtu} is below IPv6's minimum of 1280"


def _interfaces(bridge: BridgeConfig) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    return [ipaddress.ip_interface(a) for a in bridge.addresses]


def _family(bridge: BridgeConfig, version: int) -> list[str]:
    """The addresses of one IP version, as given."""
    return [a for a, i in zip(bridge.addresses, _interfaces(bridge)) if i.version == version]


def _address_problems(bridge: BridgeConfig) -> Iterator[str]:
    if bridge.address not in ADDRESSING:
        yield f"address must be one of {', '.join(ADDRESSING)}, not {bridge.address!r}"
        return
    bad = [a for a in bridge.addresses if not _is_cidr(a)]
    if bad:
        yield f"not an address/prefix: {', '.join(bad)}"
        return
    if bridge.address == "static":
        yield from _static_problems(bridge)
    elif bridge.addresses or bridge.gateway or bridge.gateway6:
        yield f"addresses and gateways need address: static (not {bridge.address})"
    if bridge.dns and bridge.address == "none":
        yield "dns needs address: dhcp or static"
    yield from (f"dns server {d!r} is not an IP address" for d in bridge.dns if not _is_ip(d))


def _static_problems(bridge: BridgeConfig) -> Iterator[str]:
    if not bridge.addresses:
        yield "address: static needs at least one address"
    if len(set(_interfaces(bridge))) != len(bridge.addresses):
        yield "an address is listed twice"
    for gateway, version in ((bridge.gateway, 4), (bridge.gateway6, 6)):
        if gateway is not None:
            yield from _gateway_problems(bridge, gateway, version)
    for server in bridge.dns:
        if _is_ip(server) and not _family(bridge, ipaddress.ip_address(server).version):
            yield f"dns server {server} has no address of its IP version to go with"


def _gateway_problems(bridge: BridgeConfig, gateway: str, version: int) -> Iterator[str]:
    field = "gateway" if version == 4 else "gateway6"
    if not _is_ip(gateway) or ipaddress.ip_address(gateway).version != version:
        yield f"{field} {gateway!r} is not an IPv{version} address"
        return
    address = ipaddress.ip_address(gateway)
    nets = [i.network for i in _interfaces(bridge) if i.version == version]
    if not nets:
        yield f"{field} {gateway} needs an IPv{version} address"
    elif not (address.is_link_local and version == 6) and not any(address in n for n in nets):
        yield f"{field} {gateway} is in none of the IPv{version} subnets"


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return "/" in text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ifupdown_problems(bridge: BridgeConfig) -> Iterator[str]:
    if not _IFUPDOWN_FILE.fullmatch(bridge.name):
        yield f"ifupdown skips interfaces.d files with a dot in the name (vr-{bridge.name})"


def _wicked_problems(bridge: BridgeConfig) -> Iterator[str]:
    if bridge.dns:
        yield "wicked has no per-interface DNS servers (they are global: NETCONFIG_DNS_STATIC_SERVERS)"
    if bridge.vlan_filtering:
        yield "wicked's ifcfg has no VLAN filtering setting"


_BACKEND_PROBLEMS = {"ifupdown": _ifupdown_problems, "wicked": _wicked_problems}


def problems(bridge: BridgeConfig, backend: str | None = None) -> list[str]:
    """Everything wrong with `bridge`, for one backend when given."""
    found = [*_name_problems(bridge), *_port_problems(bridge), *_address_problems(bridge)]
    if all(_is_cidr(a) for a in bridge.addresses):
        found += _link_problems(bridge)
    check = _BACKEND_PROBLEMS.get(backend or "")
    return found + list(check(bridge)) if check else found


def validate(bridge: BridgeConfig, backend: str | None = None) -> None:
    """Raise NetconfigError listing what is wrong, or what `backend` cannot express."""
    if backend is not None and backend not in BACKENDS:
        raise NetconfigError(f"unknown network backend {backend!r} (one of {', '.join(BACKENDS)})")
    found = problems(bridge, backend)
    if found:
        where = f" ({backend})" if backend else ""
        raise NetconfigError(f"Bridge {bridge.name}{where}: " + "; ".join(found))


# --- rendering ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / "netconfig"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


def marker(bridge: BridgeConfig) -> str:
    """The first line of every file written for `bridge`."""
    return MARKER.format(instance=bridge.instance, name=bridge.name)


def _mac(backend: str, bridge: BridgeConfig, macs: Mapping[str, str] | None) -> str | None:
    """The bridge's MAC as the backend writes it: a port name (ifupdown) or an address."""
    port = bridge.mac_from
    if port is None:
        return None
    vlan = vlan_of(port)
    parent = vlan[0] if vlan else port
    if backend == "ifupdown":
        return parent
    found = (macs or {}).get(port) or (macs or {}).get(parent)
    if found is None:
        raise NetconfigError(
            f"Bridge {bridge.name} ({backend}): mac_from {port} needs that port's MAC address "
            "(the backend cannot name a port)")
    if not _MAC.fullmatch(found.lower()):
        raise NetconfigError(f"Bridge {bridge.name}: {found!r} is not a MAC address")
    return found.lower()


def _context(bridge: BridgeConfig, mac: str | None) -> dict:
    return {
        "marker": marker(bridge), "b": bridge, "mac": mac,
        "v4": _family(bridge, 4), "v6": _family(bridge, 6),
        "dns4": [d for d in bridge.dns if ipaddress.ip_address(d).version == 4],
        "dns6": [d for d in bridge.dns if ipaddress.ip_address(d).version == 6],
        "vlan_parents": _vlan_parents(bridge),
    }


def _vlan_parents(bridge: BridgeConfig) -> dict[str, list[str]]:
    """Each VLAN port's parent -> the VLAN ports stacked on it, in port order."""
    parents: dict[str, list[str]] = {}
    for port in bridge.ports:
        vlan = vlan_of(port)
        if vlan:
            parents.setdefault(vlan[0], []).append(port)
    return parents


def _stanza(family: str, method: str, address: str | None = None, gateway: str | None = None) -> dict:
    return {"family": family, "method": method, "address": address, "gateway": gateway}


def _ifupdown_stanzas(bridge: BridgeConfig) -> list[dict]:
    """One stanza per address (ifupdown keeps only one address a stanza); the first carries the
    bridge options."""
    if bridge.address == "dhcp":
        return [_stanza("inet", "dhcp"), _stanza("inet6", "auto")]
    if bridge.address == "none":
        return [_stanza("inet", "manual")]
    return [_stanza(family, "static", address, gateway if index == 0 else None)
            for version, family, gateway in ((4, "inet", bridge.gateway), (6, "inet6", bridge.gateway6))
            for index, address in enumerate(_family(bridge, version))]


def _ifupdown(bridge: BridgeConfig, ctx: dict) -> dict[str, tuple[str, int]]:
    text = _render("ifupdown.j2", stanzas=_ifupdown_stanzas(bridge), **ctx)
    return {f"{IFUPDOWN_DIR}/vr-{bridge.name}": (text, _PUBLIC)}


def _networkd(bridge: BridgeConfig, ctx: dict) -> dict[str, tuple[str, int]]:
    prefix = f"{NETWORKD_DIR}/60-vr-{bridge.name}"
    out = {f"{prefix}.netdev": (_render("networkd-netdev.j2", **ctx), _PUBLIC),
           f"{prefix}.network": (_render("networkd-network.j2", **ctx), _PUBLIC)}
    for port in bridge.ports:
        vlan = vlan_of(port)
        if vlan:
            text = _render("networkd-vlan.j2", port=port, vid=vlan[1], **ctx)
            out[f"{prefix}-{port}.netdev"] = (text, _PUBLIC)
    for link in _links(bridge):
        text = _render("networkd-port.j2", link=link, bridged=link in bridge.ports,
                       vlans=ctx["vlan_parents"].get(link, []), **ctx)
        out[f"{prefix}-{link}.network"] = (text, _PUBLIC)
    return out


def _links(bridge: BridgeConfig) -> list[str]:
    """The ports, then the VLAN parents that are not ports themselves."""
    return [*bridge.ports, *(p for p in _vlan_parents(bridge) if p not in bridge.ports)]


def _nm(bridge: BridgeConfig, ctx: dict) -> dict[str, tuple[str, int]]:
    prefix = f"{NM_DIR}/vr-{bridge.name}"
    uuid = object_uuid(bridge.instance, "Bridge", bridge.name)
    out = {f"{prefix}.nmconnection": (_render("nm-bridge.j2", uuid=uuid, **ctx), _PRIVATE)}
    for port in bridge.ports:
        text = _render("nm-port.j2", port=port, vlan=vlan_of(port), bridge_uuid=uuid,
                       uuid=object_uuid(bridge.instance, "BridgePort", f"{bridge.name}/{port}"), **ctx)
        out[f"{prefix}-{port}.nmconnection"] = (text, _PRIVATE)
    return out


def _wicked(bridge: BridgeConfig, ctx: dict) -> dict[str, tuple[str, int]]:
    out = {f"{WICKED_DIR}/ifcfg-{bridge.name}": (_render("wicked-bridge.j2", **ctx), _PUBLIC)}
    if bridge.gateway or bridge.gateway6:
        out[f"{WICKED_DIR}/ifroute-{bridge.name}"] = (_render("wicked-routes.j2", **ctx), _PUBLIC)
    for link in _links(bridge):
        text = _render("wicked-port.j2", link=link, bridged=link in bridge.ports,
                       vlan=vlan_of(link), **ctx)
        out[f"{WICKED_DIR}/ifcfg-{link}"] = (text, _PUBLIC)
    return out


_WRITERS = {"ifupdown": _ifupdown, "networkd": _networkd, "nm": _nm, "wicked": _wicked}


def files(backend: str, bridge: BridgeConfig,
          macs: Mapping[str, str] | None = None) -> dict[str, tuple[str, int]]:
    """Absolute path -> (text, mode) of every file `backend` needs for `bridge`, ports included.
    `macs` (port -> MAC address read from the host) is needed for mac_from on networkd, nm and
    wicked, which cannot name a port; a VLAN port's MAC may be given under its parent."""
    validate(bridge, backend)
    if backend == "runtime":
        return {}
    return _WRITERS[backend](bridge, _context(bridge, _mac(backend, bridge, macs)))


# --- ownership and files on disk ---------------------------------------------------------------

def owner(text: str) -> tuple[str, str] | None:
    """(instance, bridge) from the marker on the first line (or, in a keyfile that nmcli
    rewrote without comments, its [user] virt-reconcile.owner key); None if not the tool's."""
    first = text.split("\n", 1)[0]
    found = _MARKER_RE.fullmatch(first) or _NM_OWNER_RE.search(text)
    return (found.group(1), found.group(2)) if found else None


def is_owned(text: str) -> bool:
    """True if the file carries the tool's marker."""
    return owner(text) is not None


def _target(root: str, path: str) -> Path:
    if not path.startswith("/") or ".." in Path(path).parts:
        raise NetconfigError(f"{path}: not an absolute path without '..'")
    return Path(root) / path.lstrip("/")


def _existing(target: Path) -> tuple[str, int] | None:
    """(text, mode) of a regular file at `target`; None when absent."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise NetconfigError(f"{target}: exists and is not a regular file; not touched")
    return target.read_text(encoding="utf-8", errors="replace"), info.st_mode & 0o7777


def _needs_write(path: str, target: Path, text: str, mode: int) -> bool:
    """True if `target` differs from (text, mode); refuses a file that is not this instance's."""
    current = _existing(target)
    if current is None:
        return True
    found, wanted = owner(current[0]), owner(text)
    if found is None:
        raise NetconfigError(f"{path}: exists and is not managed by virt-reconcile; not overwritten")
    if wanted is not None and found[0] != wanted[0]:
        raise NetconfigError(f"{path}: managed by virt-reconcile instance {found[0]}, not {wanted[0]}")
    return current != (text, mode)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(target: Path, text: str, mode: int) -> None:
    """Write a hidden temp file beside `target`, fsync, chmod, rename over it, fsync the dir."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write(files: Mapping[str, tuple[str, int]], root: str = "/") -> list[str]:
    """Write each file whose text or mode differs, atomically; refuse (before writing any) to
    overwrite a file that is not the tool's. Returns the paths changed."""
    pending = []
    for path, (text, mode) in files.items():
        target = _target(root, path)
        if _needs_write(path, target, text, mode):
            pending.append((path, target, text, mode))
    for _path, target, text, mode in pending:
        _atomic_write(target, text, mode)
    return [path for path, *_ in pending]


def remove(paths: Iterable[str], root: str = "/", instance: str | None = None) -> list[str]:
    """Delete those of `paths` that carry the tool's marker (of `instance` when given); returns
    the paths removed. Foreign files are left alone."""
    removed = []
    for path in paths:
        target = _target(root, path)
        current = _existing(target)
        found = owner(current[0]) if current else None
        if found is None or (instance is not None and found[0] != instance):
            continue
        target.unlink()
        _fsync_dir(target.parent)
        removed.append(path)
    return removed


def read(paths: Iterable[str], root: str = "/") -> dict[str, str]:
    """The text of those of `paths` that exist."""
    out = {}
    for path in paths:
        current = _existing(_target(root, path))
        if current is not None:
            out[path] = current[0]
    return out
