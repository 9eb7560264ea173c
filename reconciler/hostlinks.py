"""A host's network links, read and changed: through netlink (pyroute2) where the host is this
machine, or iproute2's `ip` over ssh for a `qemu+ssh://` host (the same ssh target). Both give
and take the same Link records; what to change is bridgeops.py's."""
from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlparse

from . import hostnet
from .errors import ReconcilerError

IFA_F_PERMANENT = 0x80          # an address set by hand (not a DHCP lease, not autoconfigured)


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


class Links(Protocol):
    """How links are read and changed on one host (Netlink here, IpCommands over ssh)."""

    def read(self) -> dict[str, Link]: ...
    def add_bridge(self, name: str) -> None: ...
    def add_vlan(self, name: str, parent: str, vid: int) -> None: ...
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

    def add_vlan(self, name: str, parent: str, vid: int) -> None:
        self.ip.link("add", ifname=name, kind="vlan", link=self._index(parent), vlan_id=vid)

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

    def add_vlan(self, name: str, parent: str, vid: int) -> None:
        self._ip("link", "add", "link", parent, "name", name, "type", "vlan", "id", str(vid))

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


def ssh_runner(uri: str) -> list[str] | None:
    """The ssh command line that reaches a qemu+ssh:// host (None for any other URI)."""
    parsed = urlparse(uri)
    if parsed.scheme != "qemu+ssh":
        return None
    query = dict(parse_qsl(parsed.query))
    target = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
    unverified = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    return (["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] + (["-p", str(parsed.port)] if parsed.port else [])
            + (["-i", query["keyfile"]] if "keyfile" in query else [])
            + (unverified if query.get("no_verify") == "1" else []) + [target, "--"])


def links_for(uri: str) -> Links:
    """Netlink where the host is this machine, `ip` over ssh for a qemu+ssh:// host."""
    if hostnet.is_local(uri):
        return Netlink()
    runner = ssh_runner(uri)
    if runner is None:
        raise BridgeError(f"host bridges are read and changed on this machine or over qemu+ssh:// ({uri} is neither)")
    return IpCommands(runner)


