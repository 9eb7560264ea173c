"""Host bridges as the kernel has them (the Bridge kind's runtime side): read into the Bridge
document that fields.BRIDGE declares, and changed, through netlink (pyroute2) where the host is
this machine, or `ip` commands over ssh for a `qemu+ssh://` host (the same ssh target).

The document is the tool's own XML (no libvirt object holds a host bridge), so reading, diff,
adopt and drift work on it as on libvirt's:
  <bridge name="br0"><stp state="on" forward_delay="4"/><mtu size="9000"/>
    <vlan_filtering state="off"/><port name="eth1"/><ip cidr="192.0.2.10/24"/>
    <route family="ipv4" gateway="192.0.2.1"/><persisted digest="..."/></bridge>
Ports are the links enslaved to it but guests' taps (libvirt plugs those), addresses the
permanent global ones (a DHCP lease is not the manifest's), routes the default ones through the
bridge."""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlparse
from xml.sax.saxutils import quoteattr

from . import hostnet, netconfig
from .errors import ReconcilerError
from .live import HostState, LiveObject

IFA_F_PERMANENT = 0x80


class BridgeError(ReconcilerError):
    """A host bridge could not be read or changed."""


@dataclass
class Link:
    """One bridge, or any interface a bridge may take, as the kernel has it."""

    name: str
    kind: str = ""                   # bridge, veth, vlan, bond... ('' for a plain NIC)
    master: str | None = None
    mtu: int = 1500
    mac: str = ""
    up: bool = False
    stp: bool = False
    forward_delay: int = 0           # seconds
    vlan_filtering: bool = False
    addresses: list[str] = field(default_factory=list)     # permanent global CIDRs
    gateways: dict[str, str] = field(default_factory=dict)  # family -> default route's gateway


def document(link: Link, ports: list[str], persisted: str | None) -> str:
    """The Bridge document of `link` (see the module's doc)."""
    parts = [f'<bridge name={quoteattr(link.name)}>',
             f'<stp state="{"on" if link.stp else "off"}" forward_delay="{link.forward_delay}"/>',
             f'<mtu size="{link.mtu}"/>', f'<vlan_filtering state="{"on" if link.vlan_filtering else "off"}"/>']
    parts += [f"<port name={quoteattr(p)}/>" for p in sorted(ports)]
    parts += [f"<ip cidr={quoteattr(a)}/>" for a in link.addresses]
    parts += [f'<route family="{fam}" gateway={quoteattr(gw)}/>' for fam, gw in sorted(link.gateways.items())]
    parts += [f"<persisted digest={quoteattr(persisted)}/>"] if persisted else []
    return "".join(parts) + "</bridge>"


class Links(Protocol):
    """How links are read and changed on one host (Netlink here, IpCommands over ssh)."""

    def read(self) -> dict[str, Link]: ...
    def add_bridge(self, name: str) -> None: ...
    def set_bridge(self, name: str, stp: bool | None = None, forward_delay: int | None = None,
                   vlan_filtering: bool | None = None) -> None: ...
    def set_mtu(self, name: str, mtu: int) -> None: ...
    def set_mac(self, name: str, mac: str) -> None: ...
    def set_master(self, name: str, master: str | None) -> None: ...
    def set_up(self, name: str) -> None: ...
    def add_address(self, name: str, cidr: str) -> None: ...
    def del_address(self, name: str, cidr: str) -> None: ...
    def set_gateway(self, name: str, family: str, gateway: str | None) -> None: ...
    def delete(self, name: str) -> None: ...


def _family(addr: str) -> str:
    return "ipv6" if ipaddress.ip_address(addr.split("/")[0]).version == 6 else "ipv4"


class _Calls:
    """pyroute2's IPRoute whose failures are BridgeErrors naming the call."""

    def __init__(self, ip):
        self._ip = ip

    def __getattr__(self, name):
        call = getattr(self._ip, name)

        def wrapped(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except Exception as exc:        # pyroute2's NetlinkError and its socket errors
                raise BridgeError(f"netlink {name} {args[:1]} {kwargs}: {exc}") from None
        return wrapped


class Netlink:
    """This machine's links through netlink (pyroute2)."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute      # imported here: only hosts with bridges need it
        self.ip = _Calls(IPRoute())

    def close(self) -> None:
        self.ip.close()

    def _index(self, name: str) -> int:
        found = self.ip.link_lookup(ifname=name)
        if not found:
            raise BridgeError(f"no interface {name!r} on this machine")
        return found[0]

    def read(self) -> dict[str, Link]:
        links, names = {}, {}
        for msg in self.ip.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else ""
            link = Link(msg.get_attr("IFLA_IFNAME"), kind or "", mtu=msg.get_attr("IFLA_MTU"),
                        mac=msg.get_attr("IFLA_ADDRESS") or "", up=bool(msg["flags"] & 1))
            link.master = msg.get_attr("IFLA_MASTER")
            if kind == "bridge":
                data = info.get_attr("IFLA_INFO_DATA")
                link.stp = bool(data.get_attr("IFLA_BR_STP_STATE"))
                link.forward_delay = (data.get_attr("IFLA_BR_FORWARD_DELAY") or 0) // 100
                link.vlan_filtering = bool(data.get_attr("IFLA_BR_VLAN_FILTERING"))
            links[link.name], names[msg["index"]] = link, link.name
        for link in links.values():
            link.master = names.get(link.master) if link.master else None
        for msg in self.ip.get_addr():
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            name = names.get(msg["index"])
            if name and msg["scope"] == 0 and flags & IFA_F_PERMANENT:
                links[name].addresses.append(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
        for family, code in (("ipv4", 2), ("ipv6", 10)):
            for route in self.ip.get_routes(family=code, table=254):
                if route["dst_len"] == 0 and route.get_attr("RTA_GATEWAY") and route.get_attr("RTA_OIF") in names:
                    links[names[route.get_attr("RTA_OIF")]].gateways[family] = route.get_attr("RTA_GATEWAY")
        return links

    def add_bridge(self, name: str) -> None:
        self.ip.link("add", ifname=name, kind="bridge")

    def set_bridge(self, name: str, stp: bool | None = None, forward_delay: int | None = None,
                   vlan_filtering: bool | None = None) -> None:
        """Only the options given (a kernel without VLAN filtering refuses even vlan_filtering 0)."""
        options = {"br_stp_state": stp, "br_forward_delay": None if forward_delay is None else forward_delay * 100,
                   "br_vlan_filtering": vlan_filtering}
        self.ip.link("set", index=self._index(name), kind="bridge",
                     **{k: int(v) for k, v in options.items() if v is not None})

    def set_mtu(self, name: str, mtu: int) -> None:
        self.ip.link("set", index=self._index(name), mtu=mtu)

    def set_mac(self, name: str, mac: str) -> None:
        self.ip.link("set", index=self._index(name), address=mac)

    def set_master(self, name: str, master: str | None) -> None:
        self.ip.link("set", index=self._index(name), master=self._index(master) if master else 0)

    def set_up(self, name: str) -> None:
        self.ip.link("set", index=self._index(name), state="up")

    def add_address(self, name: str, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        self.ip.addr("add", index=self._index(name), address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def del_address(self, name: str, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        self.ip.addr("del", index=self._index(name), address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def set_gateway(self, name: str, family: str, gateway: str | None) -> None:
        code = 10 if family == "ipv6" else 2
        if gateway is None:
            for route in self.ip.get_routes(family=code, table=254, oif=self._index(name)):
                if route["dst_len"] == 0:
                    self.ip.route("del", family=code, dst="default", oif=self._index(name))
            return
        self.ip.route("replace", family=code, dst="default", gateway=gateway, oif=self._index(name))

    def delete(self, name: str) -> None:
        self.ip.link("del", index=self._index(name))


class IpCommands:
    """A host's links through iproute2's `ip`, run by `runner` (ssh to a qemu+ssh host)."""

    def __init__(self, runner: list[str]):
        self.runner = runner

    def close(self) -> None:
        pass

    def _ip(self, *args: str) -> str:
        command = self.runner + ["ip", *args] if not self.runner else self.runner + [shlex.join(["ip", *args])]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BridgeError(f"ip {' '.join(args)}: {exc}") from None
        if done.returncode != 0:
            raise BridgeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def read(self) -> dict[str, Link]:
        links = {}
        for item in json.loads(self._ip("-json", "-details", "link", "show") or "[]"):
            info = item.get("linkinfo", {})
            link = Link(item["ifname"], info.get("info_kind", ""), item.get("master"), item.get("mtu", 1500),
                        item.get("address", ""), "UP" in item.get("flags", []))
            if link.kind == "bridge":
                data = info.get("info_data", {})
                link.stp = bool(data.get("stp_state"))
                link.forward_delay = int(data.get("forward_delay", 0)) // 100
                link.vlan_filtering = bool(data.get("vlan_filtering"))
            links[link.name] = link
        for item in json.loads(self._ip("-json", "address", "show") or "[]"):
            for addr in item.get("addr_info", []):
                if addr.get("scope") == "global" and not addr.get("dynamic") and item["ifname"] in links:
                    links[item["ifname"]].addresses.append(f"{addr['local']}/{addr['prefixlen']}")
        for family, flag in (("ipv4", "-4"), ("ipv6", "-6")):
            for route in json.loads(self._ip(flag, "-json", "route", "show", "default") or "[]"):
                if route.get("gateway") and route.get("dev") in links:
                    links[route["dev"]].gateways[family] = route["gateway"]
        return links

    def add_bridge(self, name: str) -> None:
        self._ip("link", "add", name, "type", "bridge")

    def set_bridge(self, name: str, stp: bool | None = None, forward_delay: int | None = None,
                   vlan_filtering: bool | None = None) -> None:
        options = {"stp_state": stp, "forward_delay": None if forward_delay is None else forward_delay * 100,
                   "vlan_filtering": vlan_filtering}
        self._ip("link", "set", name, "type", "bridge",
                 *[part for k, v in options.items() if v is not None for part in (k, str(int(v)))])

    def set_mtu(self, name: str, mtu: int) -> None:
        self._ip("link", "set", name, "mtu", str(mtu))

    def set_mac(self, name: str, mac: str) -> None:
        self._ip("link", "set", name, "address", mac)

    def set_master(self, name: str, master: str | None) -> None:
        self._ip("link", "set", name, *(("master", master) if master else ("nomaster",)))

    def set_up(self, name: str) -> None:
        self._ip("link", "set", name, "up")

    def add_address(self, name: str, cidr: str) -> None:
        self._ip("address", "add", cidr, "dev", name)

    def del_address(self, name: str, cidr: str) -> None:
        self._ip("address", "del", cidr, "dev", name)

    def set_gateway(self, name: str, family: str, gateway: str | None) -> None:
        flag = "-6" if family == "ipv6" else "-4"
        if gateway is None:
            self._ip(flag, "route", "flush", "default", "dev", name)
        else:
            self._ip(flag, "route", "replace", "default", "via", gateway, "dev", name)

    def delete(self, name: str) -> None:
        self._ip("link", "del", name)


# --- making a bridge what the manifest says ---------------------------------------------------

def converge(links: Links, want: dict) -> None:
    """Make bridge `want["name"]` have what `want` states (None: left as it is): created, its
    options, ports (written whole: a port's address the bridge takes moves with it), static
    addresses and default routes, and up."""
    name, state = want["name"], links.read()
    if name not in state:
        links.add_bridge(name)
        state = links.read()
    bridge = state[name]
    if bridge.kind != "bridge":
        raise BridgeError(f"{name} exists on the host and is not a bridge ({bridge.kind or 'a NIC'})")
    changed = {option: want[option] for option, have in (("stp", bridge.stp), ("forward_delay", bridge.forward_delay),
                                                         ("vlan_filtering", bridge.vlan_filtering))
               if want.get(option) is not None and want[option] != have}
    if changed:
        links.set_bridge(name, **changed)
    if want.get("ports") is not None:
        _ports(links, state, name, want)
    if want.get("mtu") and bridge.mtu != want["mtu"]:
        for port in want.get("ports") or []:
            links.set_mtu(port, want["mtu"])
        links.set_mtu(name, want["mtu"])
    if want.get("mac_from") and state[want["mac_from"]].mac and bridge.mac != state[want["mac_from"]].mac:
        links.set_mac(name, state[want["mac_from"]].mac)
    links.set_up(name)
    if want.get("addresses") is not None:
        have = links.read()[name].addresses
        for cidr in [a for a in want["addresses"] if a not in have]:
            links.add_address(name, cidr)
        for cidr in [a for a in have if a not in want["addresses"]]:
            links.del_address(name, cidr)
    gateways = links.read()[name].gateways
    for family in ("ipv4", "ipv6"):
        key = "gateway" if family == "ipv4" else "gateway6"
        if key in want and want[key] != gateways.get(family):
            links.set_gateway(name, family, want[key])


def _ports(links: Links, state: dict[str, Link], name: str, want: dict) -> None:
    wanted = want["ports"]
    for port in wanted:
        if port not in state:
            raise BridgeError(f"the port {port} of bridge {name} is not on the host")
        link = state[port]
        if link.master == name:
            continue
        moving = [a for a in link.addresses if a in (want.get("addresses") or [])]
        gateways = dict(link.gateways)
        for cidr in moving:
            links.del_address(port, cidr)
        links.set_master(port, name)
        links.set_up(port)
        for cidr in moving:                 # the host keeps its address: on the bridge now
            links.add_address(name, cidr)
        links.set_up(name)
        for family, gateway in gateways.items():
            if moving and want.get("gateway" if family == "ipv4" else "gateway6") == gateway:
                links.set_gateway(name, family, gateway)
    for link in state.values():       # guests' taps (tun) are libvirt's, never the manifest's ports
        if link.master == name and link.name not in wanted and link.kind != "tun":
            links.set_master(link.name, None)


def restore(links: Links, before: dict[str, Link], name: str) -> None:
    """Put the links a change of bridge `name` touched back as `before` had them (rollback)."""
    now = links.read()
    for link in now.values():                # ports that were not the bridge's leave it
        if link.master == name and before.get(link.name) and before[link.name].master != name:
            links.set_master(link.name, before[link.name].master)
    if name not in before and name in now:
        links.delete(name)
    now = links.read()
    for old in before.values():
        cur = now.get(old.name)
        if cur is None:
            continue
        if cur.master != old.master and old.master is not None and old.master in now:
            links.set_master(old.name, old.master)
        for cidr in [a for a in old.addresses if a not in cur.addresses]:
            links.add_address(old.name, cidr)
        for cidr in [a for a in cur.addresses if a not in old.addresses]:
            links.del_address(old.name, cidr)
        if old.up:
            links.set_up(old.name)
        for family, gateway in old.gateways.items():
            if cur.gateways.get(family) != gateway:
                links.set_gateway(old.name, family, gateway)


def release(links: Links, name: str) -> None:
    """Delete bridge `name`, its ports released first (they keep no address of the bridge's)."""
    state = links.read()
    if name not in state:
        return
    for link in state.values():
        if link.master == name:
            links.set_master(link.name, None)
    links.delete(name)


# --- which host, which links ------------------------------------------------------------------

def ssh_runner(uri: str) -> list[str] | None:
    """The ssh command line that reaches a qemu+ssh:// host (None for any other URI)."""
    parsed = urlparse(uri)
    if parsed.scheme != "qemu+ssh":
        return None
    query = dict(parse_qsl(parsed.query))
    target = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
    return (["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] + (["-p", str(parsed.port)] if parsed.port else [])
            + (["-i", query["keyfile"]] if "keyfile" in query else []) + [target, "--"])


def links_for(uri: str) -> Links:
    """Netlink where the host is this machine, `ip` over ssh for a qemu+ssh:// host."""
    if hostnet.is_local(uri):
        return Netlink()
    runner = ssh_runner(uri)
    if runner is None:
        raise BridgeError(f"host bridges are read and changed on this machine or over qemu+ssh:// ({uri} is neither)")
    return IpCommands(runner)


def management(links: dict[str, Link], uri: str) -> set[str]:
    """The interfaces that carry the connection to the host: the one holding the address the URI
    names (qemu+ssh), or on this machine those with a default route (an operator's session)."""
    if hostnet.is_local(uri):
        return {link.name for link in links.values() if link.gateways}
    host = urlparse(uri).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()
    return {link.name for link in links.values() if any(a.split("/")[0] in addresses for a in link.addresses)}


def reachable(uri: str, gateway: str | None, timeout: float) -> bool:
    """The host can be reached again within `timeout` s: over ssh (a qemu+ssh host), or, on this
    machine, its default gateway answers a ping."""
    runner = ssh_runner(uri)
    if runner is None and not gateway:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ping(gateway) if runner is None else _ssh_true(runner):
            return True
        time.sleep(0.5)
    return False


def _ssh_true(runner: list[str]) -> bool:
    try:
        return subprocess.run(runner + ["true"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ping(address: str, wait: float = 1.0) -> bool:
    """One ICMP echo to an IPv4 address answered within `wait` s (a raw socket: root)."""
    packet = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1) + b"virt-reconcile"
    checksum = sum(struct.unpack(f"!{len(packet) // 2}H", packet))
    checksum = (checksum >> 16) + (checksum & 0xFFFF)
    packet = packet[:2] + struct.pack("!H", ~(checksum + (checksum >> 16)) & 0xFFFF) + packet[4:]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            sock.settimeout(wait)
            sock.sendto(packet, (address, 0))
            end = time.monotonic() + wait
            while time.monotonic() < end:
                data, peer = sock.recvfrom(1024)
                header = data[(data[0] & 0x0F) * 4:]
                if peer[0] == address and header[:1] == b"\x00":       # an echo reply from it
                    return True
    except OSError:
        return False
    return False


# --- the network configuration files ---------------------------------------------------------

def read_files(uri: str, paths: list[str]) -> dict[str, str]:
    """The text of those of `paths` that exist on the host."""
    runner = ssh_runner(uri)
    if runner is None:
        return netconfig.read(paths)
    out = {}
    for path in paths:
        done = subprocess.run(runner + [shlex.join(["cat", "--", path])], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            out[path] = done.stdout
    return out


_REMOTE_WRITE = ('set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$d/.vr-XXXXXX"); cat > "$t"; '
                 'chmod "$2" "$t"; mv -f "$t" "$1"')


def write_files(uri: str, files: dict[str, tuple[str, int]]) -> None:
    """Write the tool's files atomically; a file there that is not the tool's is refused."""
    runner = ssh_runner(uri)
    if runner is None:
        netconfig.write(files)
        return
    for path, text in read_files(uri, list(files)).items():
        if not netconfig.is_owned(text):
            raise BridgeError(f"{path} on {uri} is not virt-reconcile's (no ownership line): it is left alone")
    for path, (text, mode) in files.items():
        done = subprocess.run(runner + [shlex.join(["sh", "-c", _REMOTE_WRITE, "sh", path, f"{mode:o}"])],
                              input=text, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BridgeError(f"writing {path} on {uri}: {done.stderr.strip()}")


def remove_files(uri: str, paths: list[str]) -> None:
    """Remove those of `paths` that are the tool's."""
    runner = ssh_runner(uri)
    if runner is None:
        netconfig.remove(paths)
        return
    for path, text in read_files(uri, paths).items():
        if netconfig.is_owned(text):
            subprocess.run(runner + [shlex.join(["rm", "-f", "--", path])], capture_output=True, timeout=60)


def digest(files: dict[str, str | None]) -> str:
    """One hash of the files' text (None: missing), what a Bridge's document compares."""
    blob = "\0".join(f"{path}\0{'' if text is None else text}" for path, text in sorted(files.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_paths(backend: str, name: str, ports: list[str], instance: str) -> list[str]:
    """The files `backend` keeps a bridge with these ports in (none for runtime)."""
    config = netconfig.BridgeConfig(name, tuple(ports), instance=instance)
    try:
        return sorted(netconfig.files(backend, config, {p: "00:00:00:00:00:00" for p in ports}))
    except netconfig.NetconfigError:        # a bridge the backend cannot keep (a name with a dot): none
        return []


def observe(state: HostState, uri: str, backend: str, instance: str) -> None:
    """Add the host's bridges to `state` as Bridge documents, with their links and
    the interfaces carrying the connection to the host; libvirt networks' own bridges (virbrN)
    are theirs, not Bridges. Each document's `persisted` digest covers the text of the files
    `backend` would keep it in (none: runtime)."""
    api = links_for(uri)
    try:
        links = api.read()
    finally:
        api.close()
    state.links, state.mgmt = links, management(links, uri)
    networks = {obj.root.xpath("string(bridge/@name)") for (kind, _), obj in state.objects.items()
                if kind == "Network" and obj.root.xpath("string(forward/@mode)") != "bridge"}
    bridges = {link.name: [other.name for other in links.values() if other.master == link.name and other.kind != "tun"]
               for link in links.values() if link.kind == "bridge" and link.name not in networks}
    paths = {name: config_paths(backend, name, ports, instance) for name, ports in bridges.items()}
    files = read_files(uri, sorted({p for ps in paths.values() for p in ps}))
    for name, ports in bridges.items():
        link = links[name]
        persisted = digest({p: files.get(p) for p in paths[name]}) if paths[name] else None
        state.objects[("Bridge", link.name)] = LiveObject("Bridge", link.name, document(link, ports, persisted), link.up)
