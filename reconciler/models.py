"""The manifest contract: pydantic models of every kind (the JSON Schema is generated from here)."""
from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      PlainValidator, ValidationInfo, WithJsonSchema, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from . import secretref, uris
from .deadline import DEFAULT_TIMEOUT
from .units import human_size, parse_size

# Patterns are compiled by pydantic-core (Rust regex), which unrolls a bounded repetition: a
# Unicode class taken {1,4096} times costs 38 ms to compile on every run. Long lengths are
# max_length, not {m,n}.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"
MAC_PATTERN = r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$"

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(human_size, return_type=str),
    Field(json_schema_extra={"type": ["string", "integer"], "examples": ["512MiB", "20GiB"]}),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=200)]
Mac = Annotated[str, Field(pattern=MAC_PATTERN), BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]

# libvirt's largest values: memory is parsed in KiB up to 2^53-1; qemu-img takes images up to
# 2^63-1 bytes, and qcow2 (64 KiB clusters) up to 2 PiB.
MAX_MEMORY = (2**53 - 1) * 1024
MAX_RAW = 2**63 - 1
MAX_QCOW2 = 2**51
_DNS_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _ifname(value: str) -> str:
    """Linux interface names: 1-15 bytes, no '/', ':' or spaces, not '.' or '..'."""
    if value in (".", ".."):
        raise ValueError(f"{value!r} is not an interface name")
    return value


def _dns_name(value: str) -> str:
    """A host name as DHCP and DNS take it: dot-separated labels of letters, digits and '-'."""
    labels = value.split(".")
    if len(value) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r} is not a DNS name (labels of letters, digits and '-', 1-63 "
                         "characters each, separated by dots)")
    return value


_PSEUDO_FS = ("/proc", "/sys", "/dev")


def _host_path(value: str) -> str:
    """An absolute path in normal form: '//', '/./' and a trailing '/' are folded; '..' is refused
    (it names another place when a directory is a symlink); each component fits the kernel's limits."""
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (starting with /)")
    parts = value.split("/")
    if ".." in parts:
        raise ValueError(f"{value!r} contains '..': write the path without it")
    if any(len(part.encode()) > 255 for part in parts) or len(value.encode()) > 4095:
        raise ValueError("a path component is over 255 bytes or the path over 4095 bytes")
    norm = posixpath.normpath(value)
    return "/" + norm.lstrip("/")


def _not_root(value: str) -> str:
    if value == "/":
        raise ValueError("'/' is the root directory, not a file or pool directory")
    return value


def _real_dir(value: str) -> str:
    if value == "/" or any(value == fs or value.startswith(fs + "/") for fs in _PSEUDO_FS):
        raise ValueError(f"{value!r} cannot hold a storage pool (/, /proc, /sys and /dev are not for files)")
    return value


IfName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,15}$"), AfterValidator(_ifname)]
DnsName = Annotated[str, Field(max_length=253), AfterValidator(_dns_name)]
HostPath = Annotated[str, Field(min_length=1), AfterValidator(_host_path)]


class Strict(BaseModel):
    """Base of every manifest model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Metadata(Strict):
    name: Name
    host: str | None = None
    labels: dict[str, str] = {}


class SecretRef(Strict):
    """Where a sensitive value is: an environment variable or a file (never the value itself)."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an environment variable")
    file: str | None = Field(None, min_length=1, description="a file holding the value (its last newline is "
                                                              "dropped); relative: to the manifest's directory")

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        base = (info.context or {}).get("base")
        if value is not None and not posixpath.isabs(value) and base:
            return posixpath.normpath(posixpath.join(base, value))
        return value

    @model_validator(mode="after")
    def _readable(self) -> "SecretRef":
        given = [name for name in ("env", "file") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a secret reference names exactly one of env or file: {env: NAME} or {file: path}")
        value = secretref.resolve(given[0], getattr(self, given[0]))
        if not value:
            raise ValueError(f"the secret in {given[0]} {getattr(self, given[0])} is empty")
        return self

    def read(self) -> str:
        """The value, read now."""
        return secretref.resolve("env", self.env) if self.env else secretref.resolve("file", self.file)

    @property
    def token(self) -> str:
        """What rendered XML and plans hold in place of the value (secretref)."""
        return secretref.token("env", self.env) if self.env else secretref.token("file", self.file)


# --- Host -------------------------------------------------------------------------------------

class HostSpec(Strict):
    insecure_tcp: bool = Field(False, description="accept a qemu+tcp:// URI (unencrypted)")
    uri: str = Field(min_length=1, description="libvirt connection URI: qemu:///system, "
                                              "qemu+ssh://[user@]host/system, qemu+tls://host/system, "
                                              "qemu+unix:///system?socket=PATH")
    instance: Name = Field("default", max_length=40,
                           description="names this set of manifests on the host; objects of other "
                                       "instances are never touched")
    prune: bool = Field(False, description="delete owned objects that left the manifests (as --prune)")
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=86400, description="seconds the host may take to connect and to "
                                                            "be read; past it, its part of the run fails")
    network_config: Literal["ifupdown", "networkd", "nm", "wicked", "runtime"] = Field(
        "runtime", description="where the host's Bridges are kept so that they survive a reboot: ifupdown "
                               "(/etc/network/interfaces.d), systemd-networkd, NetworkManager keyfiles, wicked "
                               "ifcfg files, or runtime (made now only: gone at the next boot)")
    migration_address: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]*$", max_length=253,
        description="the address (IP or host name) of this host that guests moving here by live migration are "
                    "sent to (default: libvirt's, the host's own name)")

    @field_validator("uri")
    @classmethod
    def _safe_uri(cls, uri: str, info: ValidationInfo) -> str:
        why = uris.problem(uri, info.data.get("insecure_tcp", False))
        if why:
            raise ValueError(why)
        return uri


# --- Bridge -----------------------------------------------------------------------------------

class BridgeSpec(Strict):
    """A Linux bridge of the host (guide 9.1.1): made now through netlink and kept in the host's
    network configuration (Host spec.network_config)."""

    ports: list[IfName] = Field([], description="the interfaces it bridges: NICs, bonds, VLANs (parent.VID); "
                                                "written whole")
    stp: bool = Field(False, description="spanning tree")
    forward_delay: int | None = Field(None, ge=0, le=30, description="seconds (2-30 with STP)")
    mtu: int | None = Field(None, ge=68, le=65535, description="of the bridge and its ports")
    vlan_filtering: bool | None = Field(None, description="VLAN-aware bridge")
    dhcp: bool = Field(False, description="the host's address on it comes from DHCP (kept in the network "
                                          "configuration; not a runtime backend's)")
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = Field(
        [], description="the host's static addresses on it (a port's same address moves to the bridge)")
    gateway: ipaddress.IPv4Address | None = Field(None, description="the default IPv4 route through it")
    gateway6: ipaddress.IPv6Address | None = Field(None, description="the default IPv6 route through it")
    dns: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field([], description="DNS servers (network "
                                                                                     "configuration only)")
    mac_from: IfName | None = Field(None, description="a port whose MAC the bridge takes (DHCP keeps the "
                                                      "host's lease)")
    protect: bool = Field(False, description="refuse to delete it when it leaves the manifests")

    @model_validator(mode="after")
    def _consistent(self) -> "BridgeSpec":
        if self.dhcp and self.addresses:
            raise ValueError("addresses or dhcp: the host's address is static or from DHCP, not both")
        if (self.gateway or self.gateway6) and not self.addresses:
            raise ValueError("a gateway needs a static address on the bridge (addresses)")
        if self.stp and self.forward_delay is not None and self.forward_delay < 2:
            raise ValueError("with STP, forward_delay is 2-30 s")
        if self.mac_from is not None and self.mac_from not in self.ports:
            raise ValueError(f"mac_from {self.mac_from} is not one of the ports")
        if len(set(self.ports)) != len(self.ports):
            raise ValueError("a port is listed twice")
        return self


# --- Network ----------------------------------------------------------------------------------

class DhcpHost(Strict):
    mac: Mac
    ip: ipaddress.IPv4Address
    name: DnsName | None = None


class Bootp(Strict):
    file: str = Field(pattern=r"^[^\s'\"<>&]+$", max_length=255, description="the boot file PXE clients load (pxelinux.0, "
                                                                     "ipxe.efi...)")
    server: ipaddress.IPv4Address | None = Field(None, description="the TFTP server (default: the network's address)")


class Dhcp(Strict):
    range: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
    ranges: list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = Field(
        [], description="more ranges after `range`")
    hosts: list[DhcpHost] = []
    bootp: Bootp | None = Field(None, description="network boot (PXE): the file and server DHCP hands out")


class IPv4(Strict):
    address: ipaddress.IPv4Interface = Field(description="the host side address with prefix, e.g. 10.0.0.1/24")
    more_addresses: list[ipaddress.IPv4Interface] = Field([], description="more subnets of the host on the network "
                                                                           "(no DHCP: libvirt serves one IPv4 subnet)")
    dhcp: Dhcp | None = None

    @model_validator(mode="after")
    def _dhcp_inside_subnet(self) -> "IPv4":
        net = self.address.network
        if self.dhcp and self.dhcp.ranges and not self.dhcp.range:
            raise ValueError("dhcp.ranges are more ranges after dhcp.range: state range first")
        spans = [("dhcp.range", self.dhcp.range)] if self.dhcp and self.dhcp.range else []
        spans += [(f"dhcp.ranges[{n}]", r) for n, r in enumerate(self.dhcp.ranges if self.dhcp else [])]
        for label, (start, end) in spans:
            if start not in net or end not in net:
                raise ValueError(f"{label} {start}-{end} is not inside {net}")
            if start > end:
                raise ValueError(f"{label} starts after it ends ({start} > {end})")
        for host in self.dhcp.hosts if self.dhcp else []:
            if host.ip not in net:
                raise ValueError(f"dhcp host {host.mac} ip {host.ip} is not inside {net}")
        if self.dhcp:
            macs = [h.mac for h in self.dhcp.hosts]
            dup = {m for m in macs if macs.count(m) > 1}
            if dup:
                raise ValueError(f"dhcp hosts repeat the MAC {', '.join(sorted(dup))}")
        return self


class Dhcp6Host(Strict):
    ip: ipaddress.IPv6Address
    name: DnsName | None = Field(None, description="the client's host name (DHCPv6 clients are matched by it or id)")
    id: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$", description="the client's DUID")

    @model_validator(mode="after")
    def _named(self) -> "Dhcp6Host":
        if self.name is None and self.id is None:
            raise ValueError("a DHCPv6 host is matched by its name or id: give one")
        return self


class Dhcp6(Strict):
    range: tuple[ipaddress.IPv6Address, ipaddress.IPv6Address] | None = None
    hosts: list[Dhcp6Host] = Field([], description="static DHCPv6 leases, keyed by ip")


class IPv6(Strict):
    address: ipaddress.IPv6Interface = Field(description="the host side address with prefix, e.g. fd00:1::1/64 "
                                                         "(libvirt announces it with router advertisements)")
    dhcp: Dhcp6 | None = None

    @model_validator(mode="after")
    def _inside(self) -> "IPv6":
        net = self.address.network
        if self.dhcp and self.dhcp.range:
            start, end = self.dhcp.range
            if start not in net or end not in net or start > end:
                raise ValueError(f"dhcp.range {start}-{end} is not an ascending range inside {net}")
        for host in self.dhcp.hosts if self.dhcp else []:
            if host.ip not in net:
                raise ValueError(f"dhcp host ip {host.ip} is not inside {net}")
        ips = [h.ip for h in self.dhcp.hosts] if self.dhcp else []
        if len(ips) != len(set(ips)):
            raise ValueError("dhcp hosts repeat an ip")
        return self


class DnsHost(Strict):
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    names: list[DnsName] = Field(min_length=1, description="the host's names (the first is its name)")


class DnsTxt(Strict):
    name: DnsName
    value: str = Field(pattern=r"^[^\n\r<>&\"']+$", max_length=255)


class DnsSrv(Strict):
    service: str = Field(pattern=r"^[A-Za-z0-9-]{1,63}$", description="e.g. ldap")
    protocol: Literal["tcp", "udp"]
    domain: DnsName | None = None
    target: DnsName | None = None
    port: int | None = Field(None, ge=1, le=65535)
    priority: int | None = Field(None, ge=0, le=65535)
    weight: int | None = Field(None, ge=0, le=65535)


class Dns(Strict):
    domain: DnsName | None = Field(None, description="the network's domain: guests' names resolve in it, and "
                                                     "only here (localOnly)")
    txt: list[DnsTxt] = Field([], description="TXT records, keyed by name; added and removed live")
    srv: list[DnsSrv] = Field([], description="SRV records, keyed by service and protocol; added and removed live")
    hosts: list[DnsHost] = Field([], description="names dnsmasq answers for, keyed by ip; added and removed live")
    forwarders: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field(
        [], description="DNS servers dnsmasq asks for other names (default: the host's resolv.conf)")

    @model_validator(mode="after")
    def _unique(self) -> "Dns":
        ips = [str(h.ip) for h in self.hosts]
        if len(ips) != len(set(ips)):
            raise ValueError(f"dns hosts repeat an ip: {sorted(ips)}")
        return self


class BandwidthLimit(Strict):
    average: int = Field(ge=1, le=2**32 - 1, description="KiB/s")
    peak: int | None = Field(None, ge=1, le=2**32 - 1, description="KiB/s")
    burst: int | None = Field(None, ge=1, le=2**32 - 1, description="KiB sent at peak")


class Bandwidth(Strict):
    """QoS (libvirt's <bandwidth>, tc on the host): of a NIC, a portgroup or a whole network."""

    inbound: BandwidthLimit | None = None
    outbound: BandwidthLimit | None = None


class Route(Strict):
    address: ipaddress.IPv4Network | ipaddress.IPv6Network = Field(description="the destination, e.g. 10.9.0.0/16")
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address = Field(description="the router on this network")

    @model_validator(mode="after")
    def _family(self) -> "Route":
        if self.address.version != self.gateway.version:
            raise ValueError(f"route {self.address} and its gateway {self.gateway} are of different families")
        return self


class Nat(Strict):
    addresses: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = Field(
        None, description="the host's public addresses guests' traffic leaves from [start, end]")
    ports: tuple[int, int] | None = Field(None, description="the source ports NAT uses [start, end] "
                                                            "(libvirt: 1024-65535)")

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports):
        if ports is not None and not (1 <= ports[0] <= ports[1] <= 65535):
            raise ValueError("ports is an ascending [start, end] within 1-65535")
        return ports


class Portgroup(Strict):
    name: Name
    default: bool | None = Field(None, description="NICs naming no portgroup get this one")
    vlan: list[Annotated[int, Field(ge=0, le=4095)]] = Field([], description="the VLAN tags (one: access; more: trunk)")
    bandwidth: Bandwidth | None = None


MACVTAP = ("bridge", "vepa", "private", "passthrough")


class NetworkSpec(Strict):
    forward: Literal["nat", "route", "open", "isolated", "bridge", "vepa", "private", "passthrough", "hostdev"] = "nat"
    bridge: IfName | None = Field(None, description="bridge device; with forward: bridge, an existing host bridge")
    interfaces: list[IfName] = Field([], description="macvtap (forward bridge without a bridge, vepa, private, "
                                                     "passthrough): the host interfaces guests' NICs sit on")
    pf: IfName | None = Field(None, description="forward: hostdev: the SR-IOV physical function whose virtual "
                                                "functions guests' NICs get")
    forward_dev: IfName | None = Field(None, description="nat, route: the only host interface traffic leaves by")
    nat: Nat | None = Field(None, description="forward: nat: the addresses and ports NAT uses")
    routes: list[Route] = Field([], description="static routes through a router on this network")
    portgroups: list[Portgroup] = Field([], description="named NIC settings (VLAN, bandwidth) guests' NICs pick "
                                                        "with portgroup; keyed by name, changed live")
    bandwidth: Bandwidth | None = Field(None, description="QoS of the whole network")
    virtualport: Literal["openvswitch"] | None = Field(None, description="forward: bridge: the bridge is an Open "
                                                                         "vSwitch bridge")
    ipv4: IPv4 | None = None
    ipv6: IPv6 | None = Field(None, description="an IPv6 subnet (dual stack with ipv4)")
    dns: Dns | None = Field(None, description="dnsmasq's DNS: domain, host names, forwarders")
    mtu: int | None = Field(None, ge=68, le=65535)
    autostart: bool = True
    protect: bool = Field(False, description="refuse to delete it when it leaves the manifests")

    @model_validator(mode="after")
    def _forward_needs(self) -> "NetworkSpec":
        macvtap = self.forward in MACVTAP and not self.bridge
        if self.forward == "bridge" and not self.bridge and not self.interfaces:
            raise ValueError("forward: bridge needs 'bridge' (an existing host bridge) or 'interfaces' (macvtap)")
        if self.forward in ("vepa", "private", "passthrough") and not self.interfaces:
            raise ValueError(f"forward: {self.forward} (macvtap) needs 'interfaces'")
        if self.forward == "hostdev" and not self.pf:
            raise ValueError("forward: hostdev needs 'pf', the SR-IOV physical function")
        if self.forward in MACVTAP + ("hostdev",) and (self.ipv4 or self.ipv6 or self.dns or self.routes):
            raise ValueError(f"forward: {self.forward} networks have no ipv4, ipv6, dns or routes: the host's LAN "
                             "serves them")
        if self.forward in ("nat", "route") and not self.ipv4:
            raise ValueError(f"forward: {self.forward} needs ipv4")
        for name, allowed in (("interfaces", macvtap), ("pf", self.forward == "hostdev"),
                              ("forward_dev", self.forward in ("nat", "route")), ("nat", self.forward == "nat"),
                              ("virtualport", self.forward == "bridge" and bool(self.bridge))):
            if getattr(self, name) not in (None, []) and not allowed:
                raise ValueError(f"{name} does not go with forward: {self.forward}"
                                 + (" and a bridge" if name == "interfaces" and self.bridge else ""))
        names = [p.name for p in self.portgroups]
        if len(names) != len(set(names)) or sum(bool(p.default) for p in self.portgroups) > 1:
            raise ValueError("portgroups repeat a name, or more than one is the default")
        return self


# --- Storage ----------------------------------------------------------------------------------

POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi", "iscsi-direct", "rbd")
IQN_PATTERN = r"^(iqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9.-]+(:[^\s'\"<>&]+)?|eui\.[0-9A-Fa-f]{16})$"


class PoolAuth(Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,128}$", description="the CHAP user (iSCSI) or cephx user (RBD)")
    secret: Name = Field(description="the Secret (usage iscsi or ceph) holding the password or key")


class PoolSource(Strict):
    """Where a pool's storage comes from; which fields a type takes is checked (StoragePoolSpec)."""

    devices: list[HostPath] = Field([], description="fs and disk: the one block device; logical: the "
                                                    "physical volumes the volume group is built on")
    format: str | None = Field(None, pattern=r"^[a-z0-9+]{2,12}$",
                               description="fs: ext4, xfs...; netfs: nfs, cifs, glusterfs; disk: gpt, dos...; "
                                           "logical: lvm2. Left out: libvirt's default (auto, unknown, lvm2), "
                                           "not managed")
    host: str | None = Field(None, pattern=r"^[A-Za-z0-9.:-]{1,253}$",
                             description="netfs: the NFS server; iscsi: the portal; rbd: a Ceph monitor")
    port: int | None = Field(None, ge=1, le=65535)
    dir: str | None = Field(None, pattern=r"^[^\s'\"<>&]+$", max_length=4096, description="netfs: the exported directory")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.+/-]{1,128}$",
                             description="logical: the volume group (default: the pool's name); rbd: the Ceph pool")
    target: str | None = Field(None, pattern=IQN_PATTERN, description="iscsi, iscsi-direct: the target IQN")
    initiator: str | None = Field(None, pattern=IQN_PATTERN,
                                  description="iscsi-direct (required), iscsi: the initiator IQN to log in as")
    auth: PoolAuth | None = Field(None, description="iscsi: CHAP; rbd: cephx")


class Permissions(Strict):
    mode: str = Field(pattern=r"^0?[0-7]{3}$", description="octal, e.g. 0750")
    owner: int | None = Field(None, ge=0, le=2**32 - 2, description="user ID")
    group: int | None = Field(None, ge=0, le=2**32 - 2, description="group ID")

    @field_validator("mode")
    @classmethod
    def _four_digits(cls, mode: str) -> str:
        return mode.rjust(4, "0")


# pool type -> (source fields it requires, source fields it takes, its target path: "dir" (a
# directory the pool builds), a fixed default, or None (no target))
POOL_SHAPES = {
    "dir": ((), (), "dir"),
    "fs": (("devices",), ("devices", "format"), "dir"),
    "netfs": (("host", "dir"), ("host", "dir", "format", "port"), "dir"),
    "logical": ((), ("devices", "name", "format"), "/dev/{vg}"),
    "disk": (("devices",), ("devices", "format"), "/dev"),
    "iscsi": (("host", "target"), ("host", "port", "target", "initiator", "auth"), "/dev/disk/by-path"),
    "iscsi-direct": (("host", "target", "initiator"), ("host", "port", "target", "initiator", "auth"), None),
    "rbd": (("host", "name"), ("host", "port", "name", "auth"), None),
}
SINGLE_DEVICE = ("fs", "disk")
DEVICE_POOLS = ("fs", "disk", "logical")       # build may format a device
LOCAL_POOLS = ("dir", *DEVICE_POOLS)            # on the host's own storage (not NFS, iSCSI, Ceph)
VOLUME_POOLS = ("dir", "fs", "netfs", "logical", "rbd")   # the tool creates volumes in these


class StoragePoolSpec(Strict):
    type: Literal["dir", "fs", "netfs", "logical", "disk", "iscsi", "iscsi-direct", "rbd"] = "dir"
    path: HostPath | None = Field(None, description="dir, fs, netfs: the directory (fs, netfs: the mount point), "
                                                    "made by apply; logical: /dev/VG, disk: /dev, iscsi: "
                                                    "/dev/disk/by-path (their defaults)")
    source: PoolSource | None = None
    permissions: Permissions | None = Field(None, description="dir: the directory's mode and owner (left out: "
                                                              "not managed)")
    overwrite: bool = Field(False, description="fs, disk, logical: format the device even when it holds other "
                                               "data (a filesystem, a partition table, LVM): destructive. Left "
                                               "false, a device that holds other data is never formatted")
    autostart: bool = True
    protect: bool = Field(False, description="refuse to delete it when it leaves the manifests")

    @field_validator("path")
    @classmethod
    def _path(cls, path: str | None, info: ValidationInfo) -> str | None:
        target = POOL_SHAPES.get(info.data.get("type", "dir"), (0, 0, "dir"))[2]
        if path is not None and target is None:
            raise ValueError(f"a {info.data['type']} pool has no path")
        return _real_dir(path) if path is not None and target == "dir" else path

    @field_validator("permissions")
    @classmethod
    def _dir_only(cls, value: Permissions | None, info: ValidationInfo) -> Permissions | None:
        if value is not None and info.data.get("type", "dir") != "dir":
            raise ValueError("permissions are for dir pools (libvirt does not set them on a mounted "
                             "filesystem's root, so they would never match)")
        return value

    @field_validator("overwrite")
    @classmethod
    def _device_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("type", "dir") not in DEVICE_POOLS:
            raise ValueError(f"overwrite is for pools on a device (fs, disk, logical), not {info.data.get('type')}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "StoragePoolSpec":
        required, taken, target = POOL_SHAPES[self.type]
        source = self.source or PoolSource()
        given = {name for name in PoolSource.model_fields if getattr(source, name) not in (None, [])}
        if given - set(taken):
            raise ValueError(f"a {self.type} pool takes no source.{sorted(given - set(taken))[0]}"
                             + (f" (it takes: {', '.join('source.' + t for t in taken)})" if taken else ""))
        if set(required) - given:
            raise ValueError(f"a {self.type} pool needs source.{sorted(set(required) - given)[0]}")
        if self.type in SINGLE_DEVICE and len(source.devices) != 1:
            raise ValueError(f"a {self.type} pool is on exactly one device (source.devices)")
        if target == "dir" and self.path is None:
            raise ValueError(f"a {self.type} pool needs path (its directory)")
        if source.auth is not None and self.type not in ("iscsi", "iscsi-direct", "rbd"):
            raise ValueError("source.auth is for iscsi and rbd pools")
        return self



class VolumeImage(Strict):
    """An image a new volume is filled from (uploaded with virStorageVolUpload)."""

    path: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(
        None, description="a qcow2 or raw image file on the machine that runs virt-reconcile (relative: to "
                          "the manifest's directory)")
    url: str | None = Field(None, pattern=r"^https?://[^\s'\"<>]+$", max_length=4096,
                            description="an http(s) URL of a qcow2 or raw image; needs sha256")
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                               description="the image's SHA-256: checked before anything is uploaded")

    @field_validator("path", mode="before")
    @classmethod
    def _relative(cls, value, info: ValidationInfo):
        base = (info.context or {}).get("base")
        if isinstance(value, str) and not value.startswith("/") and base:
            return posixpath.normpath(posixpath.join(base, value))
        return value

    @model_validator(mode="after")
    def _one(self) -> "VolumeImage":
        if (self.path is None) == (self.url is None):
            raise ValueError("an image is a path or a url (one of them)")
        if self.url is not None and self.sha256 is None:
            raise ValueError("an image from a url needs its sha256")
        return self


class VolumeEncryption(Strict):
    format: Literal["luks"] = "luks"
    passphrase: SecretRef = Field(description="where the passphrase is ({env: NAME} or {file: path}); a libvirt "
                                              "secret of usage volume holds it on the host")


VOLUME_REF = NAME_PATTERN.replace("$", "") + "/" + NAME_PATTERN[1:]


class CloudInit(Strict):
    """A cloud-init NoCloud seed (seed.py makes its ISO, label cidata). Its documents are kept in
    clear text in saved plans (the volume's record keeps their digests): they must not hold secrets."""

    user_data: dict[str, Any] | str = Field(
        {}, description="user-data: a mapping, written as #cloud-config YAML, or a text starting with "
                        "#cloud-config or #! (a script). Kept in saved plans in clear text: no secrets "
                        "(a hashed password, SSH public keys)")
    meta_data: dict[str, Any] = Field(
        {}, description="meta-data: instance-id (default: pool/volume) and local-hostname (optional), and any "
                        "other NoCloud key")
    network_config: dict[str, Any] | None = Field(
        None, description="network-config version 2 (ethernets, bonds, bridges, vlans...), written with "
                          "version: 2; left out: the image's default (DHCP on the first NIC)")

    @field_validator("user_data", mode="before")
    @classmethod
    def _text_or_mapping(cls, value):
        if not isinstance(value, (str, dict)):
            raise ValueError("user-data is a mapping (written as #cloud-config YAML) or a text")
        return value

    @field_validator("user_data")
    @classmethod
    def _header(cls, value):
        if isinstance(value, str) and not value.startswith(("#cloud-config", "#!")):
            raise ValueError("user-data as text starts with #cloud-config (YAML) or #! (a script); or write "
                             "it as a mapping")
        return value

    @field_validator("meta_data")
    @classmethod
    def _meta(cls, value: dict) -> dict:
        instance = value.get("instance-id")
        if "instance-id" in value and (not isinstance(instance, str) or not instance.strip()):
            raise ValueError("instance-id is a non-empty string")
        if "local-hostname" in value:
            host = value["local-hostname"]
            if not isinstance(host, str):
                raise ValueError("local-hostname is a string")
            try:
                _dns_name(host)
            except ValueError as exc:
                raise ValueError(f"local-hostname: {exc}") from None
        return value

    @field_validator("network_config")
    @classmethod
    def _v2(cls, value: dict | None) -> dict | None:
        if value is None:
            return value
        if "network" in value:
            raise ValueError("write the version 2 keys (ethernets, bonds...) directly, without 'network:'")
        if value.get("version", 2) != 2:
            raise ValueError("network_config is network-config version 2 (version: 2)")
        return value


SEED_EXCLUDES = ("backing", "source", "clone", "encryption", "allocation")


class VolumeSpec(Strict):
    pool: Name
    # before format and capacity: their checks (and the others') know a seed
    cloud_init: CloudInit | None = Field(None, description="a cloud-init NoCloud seed: the volume is an ISO "
                                                           "image (raw; its capacity is the image's size) "
                                                           "holding these documents, in clear text")
    format: Literal["qcow2", "raw"] = Field("qcow2", description="qcow2, or raw (a cloud_init seed is raw)")
    capacity: Size | None = Field(None, validate_default=True,
                                  description="required, except for a cloud_init seed (its image's size)")
    backing: str | None = Field(None, pattern=VOLUME_REF,
                                description="pool/volume: a qcow2 overlay on this volume (a cloud image), which "
                                            "it only reads; the overlay holds the guest's writes")
    source: VolumeImage | None = Field(None, description="fill the new volume from an image (a file or a URL "
                                                         "with its checksum); grown to capacity")
    clone: str | None = Field(None, pattern=VOLUME_REF, description="pool/volume: the new volume is a copy of it "
                                                                     "(converted to format), grown to capacity")
    allocation: Literal["sparse", "metadata", "full"] | None = Field(
        None, description="how a new volume is allocated: sparse (default for qcow2), full (default for raw: "
                          "all space reserved), metadata (qcow2: its tables preallocated)")
    permissions: Permissions | None = Field(None, description="the file's mode and owner (left out: "
                                                                    "not managed)")
    encryption: VolumeEncryption | None = Field(None, description="LUKS: the volume is encrypted with the "
                                                                  "passphrase (never shown)")
    protect: bool = Field(True, description="refuse to delete it (and its data) when it leaves the "
                                            "manifests; set false, apply, then remove it to allow that")

    @model_validator(mode="before")
    @classmethod
    def _seed_is_raw(cls, data):
        if isinstance(data, dict) and data.get("cloud_init") is not None and "format" not in data:
            return {**data, "format": "raw"}
        return data

    @field_validator("format")
    @classmethod
    def _seed_format(cls, fmt: str, info: ValidationInfo) -> str:
        if info.data.get("cloud_init") is not None and fmt != "raw":
            raise ValueError("a cloud_init seed is an ISO image: format raw")
        return fmt

    @field_validator(*SEED_EXCLUDES)
    @classmethod
    def _not_seed(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("cloud_init") is not None:
            raise ValueError(f"a cloud_init seed is made from its documents (an ISO image), not with "
                             f"{info.field_name}")
        return value

    @field_validator("capacity")
    @classmethod
    def _fits(cls, capacity: int | None, info: ValidationInfo) -> int | None:
        seed = info.data.get("cloud_init")
        if capacity is None:
            if seed is None and "cloud_init" in info.data:     # (a wrong cloud_init has its own error)
                raise PydanticCustomError("missing", "Field required")
            return capacity
        if seed is not None:
            raise ValueError("a cloud_init seed's capacity is its ISO image's size: leave capacity out")
        if capacity <= 0:
            raise ValueError("capacity must be more than 0")
        fmt = info.data.get("format", "qcow2")
        limit = MAX_QCOW2 if fmt == "qcow2" else MAX_RAW
        if capacity > limit:
            raise ValueError(f"{human_size(capacity)} is above the largest {fmt} image ({human_size(limit)})")
        if fmt == "qcow2" and capacity % 1024:
            raise ValueError(f"a qcow2 capacity is a whole number of KiB ({capacity} bytes would be rounded up "
                             "by libvirt and never match)")
        return capacity

    @property
    def full(self) -> bool:
        """A new volume takes all of its capacity (raw made empty, unless allocation says otherwise)."""
        empty = not self.source and self.cloud_init is None
        return (self.allocation or ("full" if self.format == "raw" and empty else "sparse")) == "full"

    @model_validator(mode="after")
    def _overlay(self) -> "VolumeSpec":
        if self.backing is not None and self.format != "qcow2":
            raise ValueError("an overlay (backing) is a qcow2 volume")
        made_from = [name for name in ("backing", "source", "clone") if getattr(self, name) is not None]
        if len(made_from) > 1:
            raise ValueError(f"a volume is made from one of backing, source or clone, not {' and '.join(made_from)}")
        if self.encryption is not None and made_from:
            raise ValueError(f"an encrypted volume is made empty (its {made_from[0]} would not be encrypted)")
        if self.allocation == "metadata" and self.format != "qcow2":
            raise ValueError("allocation metadata is for qcow2 volumes")
        return self


# --- Guest ------------------------------------------------------------------------------------

class Vcpus(Strict):
    current: int | None = Field(None, ge=1, description="vCPUs online now; defaults to max")
    # libvirt needs an IOMMU with extended interrupt mode (not modelled yet) above 255 vCPUs
    max: int = Field(ge=1, le=255, description="most vCPUs (up to 255)")

    @model_validator(mode="after")
    def _current_le_max(self) -> "Vcpus":
        if self.current is not None and self.current > self.max:
            raise ValueError(f"current ({self.current}) is above max ({self.max})")
        return self


class MemoryHotplug(Strict):
    max: Size = Field(description="the most memory the guest can reach by hot-plugging DIMMs (maxMemory)")
    slots: int = Field(ge=1, le=255, description="DIMM slots for hot-plug")


class Memory(Strict):
    current: Size | None = Field(None, description="balloon target; defaults to max")
    max: Size
    hotplug: MemoryHotplug | None = Field(None, description="memory hot-plug: maxMemory and its slots (needs cpu.numa)")

    @model_validator(mode="after")
    def _current_le_max(self) -> "Memory":
        if self.max < 1024**2:
            raise ValueError("max must be at least 1MiB")
        if self.max > MAX_MEMORY:
            raise ValueError(f"max is above libvirt's largest memory size ({human_size(MAX_MEMORY)})")
        if self.current is not None and self.current < 1024:
            raise ValueError("current must be at least 1KiB (leave it out to use max)")
        if self.current is not None and self.current > self.max:
            raise ValueError(f"current ({human_size(self.current)}) is above max ({human_size(self.max)})")
        if self.hotplug is not None and (self.hotplug.max < self.max or self.hotplug.max % 1024):
            raise ValueError("hotplug.max is a whole number of KiB, at least max")
        return self


def _short_form(key: str):
    """Let `vcpus: 2` / `memory: 512MiB` stand for {max: ...}."""
    return BeforeValidator(lambda v: {key: v} if isinstance(v, (int, str)) and not isinstance(v, bool) else v)


def _under_dev(value: str) -> str:
    if not value.startswith("/dev/"):
        raise ValueError("a block device is a path under /dev")
    return value


class NetworkHost(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$", description="a host name or address")
    port: int | None = Field(None, ge=1, le=65535)


class DiskAuth(Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="e.g. admin (Ceph: client name without client.)")
    secret_usage: str = Field(min_length=1, max_length=200, description="the usage name of the libvirt secret "
                                                                         "holding the key (virsh secret-list)")


class NetworkSource(Strict):
    protocol: Literal["rbd", "iscsi"] = Field(description="rbd (Ceph) or iscsi")
    name: str = Field(pattern=r"^[A-Za-z0-9_.:/-]{1,255}$", description="rbd: pool/image; iscsi: target IQN/LUN")
    hosts: list[NetworkHost] = Field(min_length=1, description="Ceph monitors, or the iSCSI portal")
    auth: DiskAuth | None = Field(None, description="the user and the libvirt secret to log in with (cephx, CHAP)")


class Disk(Strict):
    device: Literal["disk", "cdrom", "floppy", "lun"] = "disk"
    volume: str | None = Field(None, pattern=NAME_PATTERN.replace("$", "") + "/" + r"[A-Za-z0-9_][A-Za-z0-9_.+:-]*$",
                               max_length=401, description="pool/volume of a declared Volume, or a LUN or "
                                                           "partition of an iscsi or disk pool (unit:0:0:1)")
    path: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(
        None, description="image file (for a cdrom: the media)")
    format: Literal["qcow2", "raw"] | None = Field(None, description="defaults to the volume's format, or raw")
    bus: Literal["virtio", "sata", "scsi", "usb", "ide", "fdc"] | None = Field(
        None, description="virtio for disks, sata for cdroms, fdc for floppies")
    target: str | None = Field(None, pattern=r"^(vd|sd|hd|fd)[a-z]{1,2}$")
    readonly: bool | None = Field(None, description="defaults to true for a cdrom, false for a disk")
    cache: Literal["default", "none", "writethrough", "writeback", "directsync", "unsafe"] | None = Field(
        None, description="host page cache use; left out: not managed (libvirt's default)")
    io: Literal["native", "threads", "io_uring"] | None = Field(None, description="native needs cache none or directsync")
    discard: Literal["unmap", "ignore"] | None = Field(None, description="pass the guest's discards (TRIM) to the image")
    detect_zeroes: Literal["off", "on", "unmap"] | None = Field(None, description="unmap needs discard: unmap")
    boot_order: int | None = Field(None, ge=1, le=255, description="per-device boot order (1 first); the guest's "
                                                                 "boot list is then left empty")
    serial: str | None = Field(None, pattern=r"^[A-Za-z0-9_.+-]{1,36}$",
                               description="the serial number the guest sees (virtio disks show 20 characters)")
    block: Annotated[HostPath, AfterValidator(_under_dev)] | None = Field(
        None, description="a host block device, e.g. /dev/sdb or /dev/disk/by-id/...")
    network: NetworkSource | None = Field(None, description="a network source: RBD (Ceph) or iSCSI")
    wwn: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{16}$", description="the World Wide Name the guest sees "
                                                                             "(16 hex digits; scsi and ide)")
    shareable: bool | None = Field(None, description="several guests may use it at once (cluster file systems)")
    iothread: int | None = Field(None, ge=1, le=64, description="the I/O thread serving it (virtio; needs iothreads)")

    @model_validator(mode="after")
    def _driver(self) -> "Disk":
        if self.io == "native" and self.cache not in ("none", "directsync"):
            raise ValueError("io: native needs cache: none or directsync (QEMU opens the image with O_DIRECT)")
        if self.detect_zeroes == "unmap" and self.discard != "unmap":
            raise ValueError("detect_zeroes: unmap needs discard: unmap")
        return self

    @model_validator(mode="after")
    def _source(self) -> "Disk":
        given = [name for name in ("volume", "path", "block", "network") if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"give one source, not {' and '.join(given)}")
        if self.device in ("disk", "lun") and not given:
            raise ValueError(f"a {self.device} needs a volume, path, block or network source")
        if self.device == "lun" and not (self.block or (self.network and self.network.protocol == "iscsi")):
            raise ValueError("a lun passes SCSI commands through: it needs a block device or an iSCSI source")
        if self.device == "lun" and self.bus not in (None, "scsi"):
            raise ValueError("a lun sits on bus scsi")
        if self.iothread is not None and self.bus not in (None, "virtio"):
            raise ValueError("iothread is for virtio disks (a virtio-scsi controller takes its own)")
        if self.wwn is not None and self.bus in (None, "virtio", "usb", "sata", "fdc"):
            raise ValueError("wwn is for bus scsi or ide")
        return self


class Controller(Strict):
    type: Literal["scsi", "usb", "virtio-serial", "sata"]
    index: int = Field(0, ge=0, le=31, description="which controller of its type")
    model: Literal["virtio-scsi", "virtio-transitional", "virtio-non-transitional", "lsilogic", "lsisas1068",
                   "megasas", "qemu-xhci", "nec-xhci", "ich9-ehci1", "piix3-uhci", "piix4-uhci", "ehci",
                   "none"] | None = Field(None, description="virtio-scsi for SCSI disks; qemu-xhci for USB 3; none: "
                                                            "no USB controller")
    ports: int | None = Field(None, ge=1, le=15, description="USB ports (xhci)")
    queues: int | None = Field(None, ge=1, le=64, description="virtio-scsi request queues (one per vCPU)")
    iothread: int | None = Field(None, ge=1, le=64, description="the I/O thread serving a virtio-scsi controller")

    @model_validator(mode="after")
    def _fits(self) -> "Controller":
        if self.ports is not None and self.type != "usb":
            raise ValueError("ports is for USB controllers")
        for name in ("queues", "iothread"):
            if getattr(self, name) is not None and not (self.type == "scsi" and self.model == "virtio-scsi"):
                raise ValueError(f"{name} is for a virtio-scsi controller (type: scsi, model: virtio-scsi)")
        return self


class Serial(Strict):
    port: int = Field(ge=0, le=3, description="the guest's port (0: ttyS0, the console)")
    type: Literal["pty", "tcp", "file", "unix"] = Field(description="pty (virsh console), tcp, file (output "
                                                                    "only) or unix")
    path: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(None, description="file or unix: the path")
    host: str | None = Field(None, pattern=r"^[A-Za-z0-9.:-]{1,253}$", description="tcp: the address")
    service: int | None = Field(None, ge=1, le=65535, description="tcp: the port")
    mode: Literal["bind", "connect"] | None = Field(None, description="tcp, unix: listen (bind) or connect")
    protocol: Literal["raw", "telnet"] | None = Field(None, description="tcp: raw or telnet")
    log: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(None, description="a file that keeps "
                                                                                          "everything the port printed")

    @model_validator(mode="after")
    def _source(self) -> "Serial":
        needs = {"pty": (), "tcp": ("host", "service"), "file": ("path",), "unix": ("path",)}[self.type]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.type} serial port needs {' and '.join(missing)}")
        allowed = {"pty": (), "tcp": ("host", "service", "mode", "protocol"), "file": ("path",),
                   "unix": ("path", "mode")}[self.type]
        extra = [name for name in ("path", "host", "service", "mode", "protocol")
                 if getattr(self, name) is not None and name not in allowed]
        if extra:
            raise ValueError(f"{', '.join(extra)} is not for a {self.type} serial port")
        return self


_IDENTITY_TAGS = ("name", "uuid", "metadata")


def _xpath(value: str) -> str:
    """A relative XPath of the guest's definition that does not reach its identity."""
    from lxml import etree
    try:
        etree.XPath(value)
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"not an XPath: {exc}") from None
    if value.startswith("/"):
        raise ValueError("write the path relative to <domain>, e.g. devices/memballoon/@autodeflate")
    if value.split("/")[0].split("[")[0] in _IDENTITY_TAGS:
        raise ValueError("name, uuid and metadata are the tool's: an edit cannot touch them")
    return value


def _simple_path(value: str) -> str:
    from . import xmlpath
    segments, _ = xmlpath.split(value)
    try:
        for segment in segments:
            xmlpath._parse(segment)
    except ValueError:
        raise ValueError("set takes a simple path (elements with [@attr='value'] predicates, then an "
                         "optional @attribute), so that it can be created") from None
    return value


def _element(value: str) -> str:
    from lxml import etree
    try:
        el = etree.fromstring(value.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"add is not one XML element: {exc}") from None
    if el.tag in _IDENTITY_TAGS:
        raise ValueError("name, uuid and metadata are the tool's: an edit cannot add them")
    return value


class XmlEdit(Strict):
    set: Annotated[str, AfterValidator(_xpath), AfterValidator(_simple_path)] | None = Field(
        None, description="a path of the saved definition whose attribute or text becomes value")
    value: str | None = Field(None, max_length=4096, description="the value set writes")
    remove: Annotated[str, AfterValidator(_xpath)] | None = Field(None, description="an XPath: what it matches goes")
    add: Annotated[str, AfterValidator(_element)] | None = Field(None, max_length=65536,
                                                                 description="an XML element (a device) to add")
    under: Annotated[str, AfterValidator(_xpath), AfterValidator(_simple_path)] | None = Field(
        None, description="where add puts it (default devices)")

    @model_validator(mode="after")
    def _one(self) -> "XmlEdit":
        given = [name for name in ("set", "remove", "add") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("an XML edit is exactly one of set (with value), remove or add")
        if (self.value is not None) != (self.set is not None):
            raise ValueError("value goes with set (and set needs it)")
        if self.under is not None and self.add is None:
            raise ValueError("under goes with add")
        return self


class Direct(Strict):
    dev: IfName = Field(description="the host interface the macvtap device sits on")
    mode: Literal["bridge", "vepa", "private", "passthrough"] = Field(
        "bridge", description="bridge: guests on the same dev reach each other (the host does not)")


class Interface(Strict):
    network: Name | None = Field(None, description="a libvirt Network")
    bridge: IfName | None = Field(None, description="a host bridge (the guide's 9.1.1), e.g. br0")
    direct: Direct | None = Field(None, description="macvtap on a host interface")
    mac: Mac | None = Field(None, description="pinned MAC; when left out, kept from the live guest or derived")
    model: Literal["virtio", "e1000e", "e1000", "rtl8139"] = "virtio"
    mtu: int | None = Field(None, ge=68, le=65535, description="the guest side MTU")
    queues: int | None = Field(None, ge=1, le=256, description="virtio multiqueue: queue pairs (one per vCPU)")
    link: Literal["up", "down"] | None = Field(None, description="the link state; changed live")
    hostdev: PciAddress | None = Field(None, description="an SR-IOV virtual function given to the guest (PCI address)")
    portgroup: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a portgroup of the network")
    vlan: list[Annotated[int, Field(ge=1, le=4094)]] | None = Field(
        None, description="VLAN tags (several: a trunk); for Open vSwitch, SR-IOV and macvtap passthrough")
    bandwidth: Bandwidth | None = Field(None, description="QoS limits (inbound/outbound average, peak, burst); "
                                                          "changed live")
    boot_order: int | None = Field(None, ge=1, le=255, description="per-device boot order (1 first); the guest's "
                                                                 "boot list is then left empty")
    ip: ipaddress.IPv4Address | None = Field(None, description="a static DHCP lease for this NIC on its network "
                                                                "(added to the network's dhcp hosts; needs mac)")

    @model_validator(mode="after")
    def _one_source(self) -> "Interface":
        given = [name for name in ("network", "bridge", "direct", "hostdev") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a NIC has exactly one of network, bridge, direct or hostdev")
        if self.portgroup is not None and self.network is None:
            raise ValueError("portgroup is for a NIC on a libvirt network")
        if self.hostdev is not None and (self.mtu or self.queues or "model" in self.model_fields_set):
            raise ValueError("a hostdev NIC is the VF itself: it has no model, mtu or queues")
        if self.ip is not None and self.network is None:
            raise ValueError("ip (a DHCP lease) is for a NIC on a libvirt network")
        if self.ip is not None and self.mac is None:
            raise ValueError("ip (a DHCP lease) needs the NIC's mac")
        if self.queues is not None and self.model != "virtio":
            raise ValueError("queues (multiqueue) needs model: virtio")
        return self


def dns_name_or_none(value: str) -> str | None:
    """`value` when it is a DNS name (a DHCP host name), else None."""
    try:
        return _dns_name(value)
    except ValueError:
        return None


def _no_scope(value):
    if getattr(value, "scope_id", None):
        raise ValueError("an IPv6 address with a %scope is not accepted by libvirt")
    return value


def _no_secret_text(value):
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        raise ValueError("a password is never written in a manifest: give {env: NAME} or {file: path}")
    return value


def _listen(value) -> str:
    """An IP address (no %scope), `none` or `default`."""
    if value in ("none", "default"):
        return value
    try:
        return str(_no_scope(ipaddress.ip_address(value)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IP address or none" if not isinstance(exc, ValueError)
                         or "scope" not in str(exc) else str(exc)) from None


Listen = Annotated[str, PlainValidator(_listen),
                   WithJsonSchema({"type": "string", "examples": ["127.0.0.1", "::1", "none", "default"]})]


class Graphics(Strict):
    type: Literal["vnc", "spice"] = Field("vnc", description="vnc, or spice (virt-manager's default)")
    listen: Listen = Field("127.0.0.1",
                                             description="the address to listen on; none: local clients only "
                                                         "(what SPICE gl needs); default: qemu.conf's "
                                                         "vnc_listen/spice_listen")
    port: int | None = Field(None, ge=5900, le=65535, description="fixed port; left out: allocated at start")
    keymap: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]{2,})?$", description="e.g. en-us, de, de-ch")
    password: Annotated[SecretRef, BeforeValidator(_no_secret_text)] | None = Field(
        None, description="{env: NAME} or {file: path}; changed live; never shown in plans or saved")
    gl: bool | None = Field(None, description="SPICE OpenGL (virgl; needs listen: none and a host GPU render node)")
    streaming: Literal["filter", "all", "off"] | None = Field(None, description="SPICE video streaming detection")

    @model_validator(mode="after")
    def _spice_only(self) -> "Graphics":
        for name in ("gl", "streaming"):
            if getattr(self, name) is not None and self.type != "spice":
                raise ValueError(f"{name} is a SPICE setting (type: spice)")
        if self.gl and self.listen != "none":
            raise ValueError("gl needs listen: none (SPICE GL serves local clients only)")
        if self.port is not None and self.listen == "none":
            raise ValueError("port needs a listen address (listen: none has no port)")
        return self


class Video(Strict):
    model: Literal["qxl", "virtio", "vga", "bochs", "ramfb", "cirrus", "none"] = Field(
        description="qxl for SPICE, virtio (with accel3d for virgl), vga, bochs, ramfb, cirrus, none")
    heads: int | None = Field(None, ge=1, le=16, description="displays")
    vram: Size | None = Field(None, description="video memory (qxl, vga, cirrus); a whole number of KiB")
    accel3d: bool | None = Field(None, description="3D acceleration (virtio with SPICE gl)")

    @model_validator(mode="after")
    def _fits(self) -> "Video":
        if self.vram is not None and (self.vram % 1024 or self.vram <= 0):
            raise ValueError("vram is a whole number of KiB above 0")
        if self.vram is not None and self.model not in ("qxl", "vga", "cirrus"):
            raise ValueError("vram is for qxl, vga and cirrus")
        if self.accel3d is not None and self.model != "virtio":
            raise ValueError("accel3d needs model: virtio")
        return self


class Input(Strict):
    type: Literal["tablet", "keyboard", "mouse"] = Field(description="tablet: absolute pointer (no mouse lag under VNC/SPICE)")
    bus: Literal["usb", "virtio", "ps2"] = Field("usb", description="usb, virtio or ps2 (keyboard and mouse only)")

    @model_validator(mode="after")
    def _ps2(self) -> "Input":
        if self.bus == "ps2" and self.type == "tablet":
            raise ValueError("a tablet is usb or virtio (ps2 has no tablet)")
        return self


class Sound(Strict):
    model: Literal["ich9", "ich6", "ich7", "ac97", "es1370", "sb16", "usb"] = Field(
        "ich9", description="ich9 on q35, ich6 on pc, usb without PCI")


class Tpm(Strict):
    model: Literal["tpm-crb", "tpm-tis"] = Field("tpm-crb", description="tpm-crb (TPM 2.0 only) or tpm-tis")
    version: Literal["2.0", "1.2"] = Field("2.0", description="the emulated TPM's version (swtpm)")
    backend: Literal["emulator", "passthrough"] = Field("emulator", description="emulator (swtpm), or passthrough "
                                                                                "of the host's TPM")
    device: Annotated[HostPath, AfterValidator(_under_dev)] | None = Field(
        None, description="passthrough: the host's TPM device, e.g. /dev/tpm0")
    secret: Name | None = Field(None, description="emulator: the Secret (usage vtpm) whose value encrypts the TPM's "
                                                  "state; set it when the TPM is made (another one cannot decrypt "
                                                  "the state)")

    @model_validator(mode="after")
    def _crb_is_2(self) -> "Tpm":
        if self.model == "tpm-crb" and self.version != "2.0":
            raise ValueError("tpm-crb is a TPM 2.0 interface: use version 2.0, or model tpm-tis for 1.2")
        if self.secret is not None and self.backend != "emulator":
            raise ValueError("secret encrypts an emulated TPM's state (backend emulator)")
        if (self.backend == "passthrough") != (self.device is not None):
            raise ValueError("device goes with backend: passthrough (and passthrough needs it)")
        return self


PciAddress = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$",
                                  examples=["0000:01:00.0"]),
                       BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]
UsbId = Annotated[str, BeforeValidator(lambda v: v.lower().removeprefix("0x") if isinstance(v, str) else v),
                  Field(pattern=r"^[0-9a-f]{4}$", examples=["046d"])]


class UsbDevice(Strict):
    vendor: UsbId | None = Field(None, description="the vendor ID (lsusb), with product")
    product: UsbId | None = None
    bus: int | None = Field(None, ge=0, le=255, description="or the host's USB bus and device numbers")
    device: int | None = Field(None, ge=0, le=255)

    @model_validator(mode="after")
    def _one_way(self) -> "UsbDevice":
        by_id = self.vendor is not None and self.product is not None
        by_address = self.bus is not None and self.device is not None
        if by_id == by_address or (by_id and (self.bus, self.device) != (None, None)) or \
                (by_address and (self.vendor, self.product) != (None, None)):
            raise ValueError("name a USB device by vendor and product, or by bus and device")
        return self


class Hostdev(Strict):
    pci: PciAddress | None = Field(None, description="a host PCI device (lspci -D), e.g. a GPU function")
    usb: UsbDevice | None = Field(None, description="a host USB device")
    mdev: str | None = Field(None, pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
                             description="a mediated device's UUID (vGPU slice)")
    managed: bool | None = Field(None, description="libvirt detaches the device from its host driver at start "
                                                   "(PCI, USB)")
    rom_bar: bool | None = Field(None, description="PCI: show the device's option ROM to the guest")
    display: bool | None = Field(None, description="mdev: use the vGPU as the guest's display")
    boot_order: int | None = Field(None, ge=1, le=255, description="per-device boot order")

    @model_validator(mode="after")
    def _one_source(self) -> "Hostdev":
        given = [name for name in ("pci", "usb", "mdev") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a hostdev is exactly one of pci, usb or mdev")
        if self.rom_bar is not None and self.pci is None:
            raise ValueError("rom_bar is for PCI devices")
        if self.display is not None and self.mdev is None:
            raise ValueError("display is for mediated devices")
        if self.managed is not None and self.mdev is not None:
            raise ValueError("managed is for PCI and USB devices")
        return self

    @property
    def key(self) -> str:
        """What identifies it in the guest (fields.hostdev_key reads the same from XML)."""
        if self.pci:
            return f"pci:{self.pci.replace('.', '/')}"
        if self.mdev:
            return f"mdev:{self.mdev.lower()}"
        u = self.usb
        return f"usb:{u.vendor}:{u.product}" if u.vendor else f"usb:{u.bus}/{u.device}"


class MemoryBacking(Strict):
    source: Literal["memfd", "anonymous", "file"] | None = Field(None, description="memfd: what virtiofs needs")
    access: Literal["shared", "private"] | None = Field(None, description="shared: what virtiofs needs")
    hugepages: bool | None = Field(None, description="back the guest's memory with the host's hugepages")
    nosharepages: bool | None = Field(None, description="true: opt the guest's memory out of KSM (kernel "
                                                         "same-page merging)")


class Filesystem(Strict):
    source: HostPath = Field(description="the host directory to share")
    target: str = Field(pattern=r"^[A-Za-z0-9_.+-]{1,36}$", description="the tag the guest mounts "
                                                                         "(mount -t virtiofs TAG /mnt)")
    driver: Literal["virtiofs", "9p"] = Field("virtiofs", description="virtiofs (virtiofsd) or 9p (virtio-9p)")
    readonly: bool | None = Field(None, description="9p only (libvirt 9.0 cannot make a virtiofs share read-only)")

    @model_validator(mode="after")
    def _virtiofs_rw(self) -> "Filesystem":
        if self.driver == "virtiofs" and self.readonly:
            raise ValueError("libvirt 9.0 cannot make a virtiofs share read-only: use driver 9p")
        return self


class Hyperv(Strict):
    """Hyper-V enlightenments (what virt-install writes for Windows: relaxed, vapic, spinlocks)."""

    relaxed: bool | None = None
    vapic: bool | None = None
    vpindex: bool | None = None
    runtime: bool | None = None
    synic: bool | None = None
    stimer: bool | None = None
    reset: bool | None = None
    frequencies: bool | None = None
    tlbflush: bool | None = None
    ipi: bool | None = None
    spinlocks: int | None = Field(None, ge=4095, description="spinlock retries (8191 is virt-install's)")


class Features(Strict):
    acpi: bool | None = None
    apic: bool | None = None
    pae: bool | None = None
    vmport: bool | None = Field(None, description="VMware's I/O port (off for most guests)")
    kvm_hidden: bool | None = Field(None, description="hide KVM from the guest (some GPU drivers check)")
    smm: bool | None = Field(None, description="System Management Mode (secure boot turns it on)")
    pmu: bool | None = Field(None, description="the virtual performance monitoring unit")
    ioapic: Literal["kvm", "qemu"] | None = Field(None, description="the I/O APIC: in KVM, or emulated by QEMU (with "
                                                                    "an IOMMU's interrupt remapping)")
    hyperv: Hyperv | None = None


class Timer(Strict):
    name: Literal["rtc", "pit", "hpet", "hypervclock", "kvmclock", "tsc"]
    tickpolicy: Literal["delay", "catchup", "merge", "discard"] | None = None
    present: bool | None = None


class Clock(Strict):
    offset: Literal["utc", "localtime"] | None = Field(None, description="localtime for Windows guests")
    timers: list[Timer] = []


class Rng(Strict):
    model: Literal["virtio"] = "virtio"
    backend: Literal["/dev/urandom", "/dev/random"] = Field("/dev/urandom", description="the host's entropy source")


class Watchdog(Strict):
    model: Literal["i6300esb", "itco", "ib700"] = Field("i6300esb", description="itco: q35's own; ib700: ISA, pc only")
    action: Literal["reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi"] = Field(
        "reset", description="what the host does when the guest stops feeding it")


CpuSet = Annotated[str, Field(pattern=r"^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$", examples=["0-3", "0,2", "0-7,^4"])]


class CpuFeature(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a CPU flag as libvirt names it (vmx, svm, x2apic...)")
    policy: Literal["require", "disable", "force", "optional", "forbid"] = "require"


class Topology(Strict):
    sockets: int = Field(ge=1, le=255)
    dies: int = Field(1, ge=1, le=255)
    cores: int = Field(ge=1, le=255)
    threads: int = Field(ge=1, le=255)


class NumaCell(Strict):
    id: int = Field(ge=0, le=255)
    cpus: CpuSet = Field(description="the vCPUs of the cell, e.g. 0-1")
    memory: Size = Field(description="the cell's memory; the cells add up to memory.max")


class Cpu(Strict):
    mode: Literal["host-model", "host-passthrough", "maximum", "custom"] | None = Field(
        None, description="custom with a model; left out with a model: custom")
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a named CPU model (virsh cpu-models x86_64)")
    fallback: Literal["allow", "forbid"] | None = Field(None, description="allow: a similar model when the host lacks it")
    features: list[CpuFeature] = Field([], description="CPU flags required or disabled, keyed by name")
    topology: Topology | None = Field(None, description="sockets x dies x cores x threads = vcpus.max")
    numa: list[NumaCell] = Field([], description="guest NUMA cells, keyed by id")

    @model_validator(mode="after")
    def _model_is_custom(self) -> "Cpu":
        if self.mode is None and self.model is None and not (self.features or self.topology or self.numa):
            raise ValueError("cpu states nothing: give a mode, a model, features, topology or numa")
        if self.model is not None and self.mode not in (None, "custom", "host-model"):
            raise ValueError(f"a CPU model goes with mode custom (or host-model's fallback), not {self.mode}")
        if self.mode == "custom" and self.model is None:
            raise ValueError("mode custom needs a model")
        if self.fallback is not None and self.model is None:
            raise ValueError("fallback needs a model")
        for what, keys in (("features", [f.name for f in self.features]), ("numa cells", [c.id for c in self.numa])):
            if len(keys) != len(set(keys)):
                raise ValueError(f"{what} repeat: {sorted(keys)}")
        return self


class VcpuPin(Strict):
    vcpu: int = Field(ge=0, le=254)
    cpuset: CpuSet = Field(description="host CPUs this vCPU may run on")


class CpuTune(Strict):
    vcpupin: list[VcpuPin] = Field([], description="vCPU pinning, keyed by vcpu")
    emulatorpin: CpuSet | None = Field(None, description="host CPUs QEMU's own threads may run on")

    @model_validator(mode="after")
    def _unique(self) -> "CpuTune":
        vcpus = [p.vcpu for p in self.vcpupin]
        if len(vcpus) != len(set(vcpus)):
            raise ValueError(f"vcpupin repeats vCPUs: {sorted(vcpus)}")
        return self


class Panic(Strict):
    model: Literal["isa", "pvpanic", "hyperv"] = Field("isa", description="isa (pvpanic on the ISA bus), pvpanic "
                                                                        "(PCI), hyperv (Windows)")


class GuestSpec(Strict):
    state: Literal["running", "shutoff", "paused"] = Field(
        "running", description="paused: started (when shut off) and kept paused (its vCPUs stopped)")
    autostart: bool = False
    vcpus: Annotated[Vcpus, _short_form("max")]
    memory: Annotated[Memory, _short_form("max")]
    machine: str = Field("q35", pattern=r"^(q35|pc|ubuntu(-q35)?|pc-(q35|i440fx)-[a-z0-9_.+-]+)$",
                         description="q35, pc or a versioned type (pc-q35-*, pc-i440fx-*); isapc and "
                                     "microvm have no PCI bus for the devices guests are given")
    cpu: Cpu | None = Field(None, description="the guest's CPU: mode or model, flags, topology, NUMA cells")
    cputune: CpuTune | None = Field(None, description="pinning of vCPUs and QEMU's threads to host CPUs")
    xml: list[XmlEdit] = Field([], description="the escape hatch: XML edits of the saved definition for what no "
                                               "field covers (set, remove, add), made in place, checked by "
                                               "libvirt's schema")
    hostdevs: list[Hostdev] = Field([], description="host PCI, USB and mediated devices given to the guest")
    iothreads: int | None = Field(None, ge=1, le=64, description="I/O threads for virtio disks and controllers")
    controllers: list[Controller] = Field([], description="disk and USB controllers, keyed by type and index "
                                                          "(the ones libvirt adds itself stay unless stated)")
    hotplug_slots: int | None = Field(None, ge=1, le=32, description="free PCIe root ports kept for hot-plug (q35)")
    balloon: Literal["virtio", "virtio-transitional", "virtio-non-transitional", "none"] | None = Field(
        None, description="the memory balloon's model; none: no balloon (memory.current cannot move)")
    panic: Panic | None = Field(None, description="a panic notifier: the host sees the guest's kernel panics")
    firmware: Literal["bios", "efi"] | None = Field(
        None, description="efi: UEFI (OVMF), the firmware file chosen by libvirt; left out: not managed")
    boot_menu: bool | None = Field(None, description="the firmware's boot menu (press Esc/F12 at start)")
    kernel: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(
        None, description="direct kernel boot: a kernel image on the host")
    initrd: Annotated[HostPath, AfterValidator(_not_root)] | None = Field(None, description="its initrd (needs kernel)")
    cmdline: str | None = Field(None, max_length=4096, description="its command line (needs kernel)")
    secure_boot: bool | None = Field(None, description="UEFI secure boot (needs firmware: efi and a q35 machine; "
                                                       "turns SMM on)")
    enrolled_keys: bool | None = Field(None, description="UEFI firmware with Microsoft's keys enrolled; a new guest "
                                                         "takes secure_boot's value")
    tpm: Tpm | None = Field(None, description="an emulated TPM (swtpm); its state is kept across redefines and "
                                              "when the guest is deleted")
    type: Literal["kvm", "qemu"] | None = Field(None, description="left out: kvm where the host has it")
    disks: list[Disk] = []
    interfaces: list[Interface] = []
    graphics: Graphics | None = None
    video: Video | None = Field(None, description="the video card; left out: what libvirt picks stays")
    inputs: list[Input] = Field([], description="input devices (libvirt adds ps2 mouse and keyboard itself)")
    sound: Sound | None = Field(None, description="a sound card (SPICE plays it on the client)")
    usb_redirect: int | None = Field(None, ge=0, le=8, description="SPICE USB redirection channels (client USB "
                                                                  "devices given to the guest; needs SPICE to start)")
    spice_agent: bool | None = Field(None, description="the SPICE vdagent channel (clipboard, display "
                                                                     "resize; needs SPICE to start)")
    console: bool = Field(True, description="a serial console on a pty (serial port 0)")
    serials: list[Serial] = Field([], description="serial ports keyed by port: pty, tcp, file or unix, with a log")
    guest_agent: bool | None = Field(None, description="a virtio channel for qemu-guest-agent "
                                                       "(org.qemu.guest_agent.0); left out: not managed")
    rng: Rng | None = Field(None, description="a virtio RNG fed from the host's entropy")
    memory_backing: MemoryBacking | None = Field(None, description="how the guest's memory is backed on the host")
    features: Features | None = Field(None, description="hypervisor features; only those stated are managed")
    clock: Clock | None = Field(None, description="the guest's clock: offset and timers")
    on_poweroff: Literal["destroy", "restart", "preserve", "rename-restart"] | None = None
    on_reboot: Literal["destroy", "restart", "preserve", "rename-restart"] | None = None
    on_crash: Literal["destroy", "restart", "preserve", "rename-restart", "coredump-destroy",
                      "coredump-restart"] | None = None
    filesystems: list[Filesystem] = Field([], description="host directories shared with the guest (virtiofs, 9p)")
    watchdog: Watchdog | None = Field(None, description="a watchdog device and its action")
    boot: list[Literal["hd", "cdrom", "network", "fd"]] = Field(
        ["hd"], description="boot order; [] leaves <os> without boot elements (per-device boot order)")
    exclusive: list[Literal["disks", "interfaces", "graphics"]] = Field(
        [], description="device kinds whose list in the manifest is the whole list: devices of these "
                        "kinds that it does not state are removed, even ones the tool never created")
    protect: bool = Field(False, description="refuse to delete it when it leaves the manifests")

    @model_validator(mode="after")
    def _virtiofs_needs_shared_memory(self) -> "GuestSpec":
        if any(f.driver == "virtiofs" for f in self.filesystems):
            backing = self.memory_backing
            if backing is None or backing.access != "shared" or backing.source not in ("memfd", "file"):
                raise ValueError("virtiofs needs memory_backing: {source: memfd, access: shared}")
        targets = [f.target for f in self.filesystems]
        if len(targets) != len(set(targets)):
            raise ValueError(f"filesystem targets repeat: {sorted(targets)}")
        return self

    @model_validator(mode="after")
    def _spice_needs(self) -> "GuestSpec":
        if self.graphics and self.graphics.gl and not (self.video and self.video.model == "virtio" and self.video.accel3d):
            raise ValueError("graphics.gl needs video: {model: virtio, accel3d: true}")
        inputs = [(i.type, i.bus) for i in self.inputs]
        if len(inputs) != len(set(inputs)):
            raise ValueError(f"inputs repeat: {sorted(f'{t}/{b}' for t, b in inputs)}")
        return self

    @model_validator(mode="after")
    def _controllers(self) -> "GuestSpec":
        devices = [h.key for h in self.hostdevs]
        if len(devices) != len(set(devices)):
            raise ValueError(f"hostdevs repeat: {sorted(devices)}")
        keys = [(c.type, c.index) for c in self.controllers]
        if len(keys) != len(set(keys)):
            raise ValueError(f"controllers repeat: {sorted(f'{t}:{i}' for t, i in keys)}")
        threads = [d.iothread for d in self.disks] + [c.iothread for c in self.controllers]
        if any(t is not None and t > (self.iothreads or 0) for t in threads):
            raise ValueError(f"an iothread is above iothreads ({self.iothreads or 0})")
        if self.hotplug_slots is not None and "q35" not in self.machine:
            raise ValueError("hotplug_slots is for q35 machines (pc hot-plugs into its root bus)")
        return self

    @model_validator(mode="after")
    def _serials(self) -> "GuestSpec":
        ports = [s.port for s in self.serials]
        if len(ports) != len(set(ports)):
            raise ValueError(f"serial ports repeat: {sorted(ports)}")
        first = next((s for s in self.serials if s.port == 0), None)
        if first is not None and first.type != "pty" and self.console and "console" in self.model_fields_set:
            raise ValueError(f"serial port 0 is {first.type}: the pty console is on it, so set console: false")
        if first is not None and first.type == "pty" and not self.console:
            raise ValueError("serial port 0 is the pty console (libvirt shows it as the console): leave console out")
        return self

    @property
    def pty_console(self) -> bool:
        """The pty pair the console field renders: not when serials state port 0 themselves."""
        return self.console and not any(s.port == 0 for s in self.serials)

    @model_validator(mode="after")
    def _boot_orders(self) -> "GuestSpec":
        orders = [d.boot_order for d in [*self.disks, *self.interfaces, *self.hostdevs] if d.boot_order is not None]
        if orders and self.boot and "boot" in self.model_fields_set:
            raise ValueError("per-device boot_order and a boot list exclude each other (libvirt): leave boot out")
        if len(orders) != len(set(orders)):
            raise ValueError(f"boot_order values repeat: {sorted(orders)}")
        return self

    @property
    def boot_list(self) -> list[str]:
        """The <os> boot list: empty when devices carry their own boot order."""
        if "boot" not in self.model_fields_set and any(
                d.boot_order is not None for d in [*self.disks, *self.interfaces, *self.hostdevs]):
            return []
        return self.boot

    @model_validator(mode="after")
    def _cpu_fits(self) -> "GuestSpec":
        cpu, vcpus = self.cpu, self.vcpus.max
        if cpu and cpu.topology:
            t = cpu.topology
            if t.sockets * t.dies * t.cores * t.threads != vcpus:
                raise ValueError(f"cpu.topology gives {t.sockets * t.dies * t.cores * t.threads} vCPUs, "
                                 f"vcpus.max is {vcpus}")
        if cpu and cpu.numa and sum(c.memory for c in cpu.numa) != self.memory.max:
            raise ValueError(f"cpu.numa cells add up to {human_size(sum(c.memory for c in cpu.numa))}, "
                             f"memory.max is {human_size(self.memory.max)} (libvirt would take the cells' sum)")
        if self.memory.hotplug and not (cpu and cpu.numa):
            raise ValueError("memory.hotplug needs cpu.numa cells (libvirt needs a NUMA node for the DIMMs)")
        for pin in self.cputune.vcpupin if self.cputune else []:
            if pin.vcpu >= vcpus:
                raise ValueError(f"cputune.vcpupin names vCPU {pin.vcpu}; the guest has {vcpus} (0-{vcpus - 1})")
        if self.features and self.features.smm is False and self.secure_boot:
            raise ValueError("secure_boot needs SMM: features.smm cannot be false")
        return self

    @model_validator(mode="after")
    def _kernel_needs(self) -> "GuestSpec":
        for name in ("initrd", "cmdline"):
            if getattr(self, name) is not None and self.kernel is None:
                raise ValueError(f"{name} needs kernel (direct kernel boot)")
        return self

    @model_validator(mode="after")
    def _uefi_needs(self) -> "GuestSpec":
        for name in ("secure_boot", "enrolled_keys"):
            if getattr(self, name) is not None and self.firmware != "efi":
                raise ValueError(f"{name} needs firmware: efi")
        if self.secure_boot and not (self.machine == "q35" or self.machine.startswith(("pc-q35-", "ubuntu-q35"))):
            raise ValueError("secure_boot needs a q35 machine (it needs SMM)")
        return self

    @model_validator(mode="after")
    def _unique_targets(self) -> "GuestSpec":
        targets = [d.target for d in self.disks if d.target]
        if len(targets) != len(set(targets)):
            raise ValueError(f"disk targets repeat: {sorted(targets)}")
        macs = [i.mac for i in self.interfaces if i.mac]
        if len(macs) != len(set(macs)):
            raise ValueError(f"interface MACs repeat: {sorted(macs)}")
        return self


# --- Secret -----------------------------------------------------------------------------------

class SecretSpec(Strict):
    """A libvirt secret, found by its usage: `usage` and the object's name (what pools, disks and
    TPMs name in `secret`)."""

    usage: Literal["ceph", "iscsi", "tls", "vtpm"] = Field(
        description="what uses it: ceph (RBD pools and disks), iscsi (CHAP), tls, vtpm (an encrypted TPM "
                    "state); its usage name on the host is the object's name (LUKS volumes make their own: "
                    "Volume encryption)")
    description: str | None = None
    value: SecretRef | None = Field(None, description="where its value is ({env: NAME} or {file: path}); "
                                                      "left out: the value is not managed")
    private: bool | None = Field(None, description="libvirt never gives the value back (libvirt's default: "
                                                   "false); a private secret cannot become readable again")
    ephemeral: bool | None = Field(None, description="kept in memory only, gone when libvirtd restarts")
    protect: bool = Field(False, description="refuse to delete it when it leaves the manifests")


# --- Documents --------------------------------------------------------------------------------

class HostDoc(Strict):
    kind: Literal["Host"]
    metadata: Metadata
    spec: HostSpec


class BridgeDoc(Strict):
    kind: Literal["Bridge"]
    metadata: Metadata
    spec: BridgeSpec


class NetworkDoc(Strict):
    kind: Literal["Network"]
    metadata: Metadata
    spec: NetworkSpec


class StoragePoolDoc(Strict):
    kind: Literal["StoragePool"]
    metadata: Metadata
    spec: StoragePoolSpec


class VolumeDoc(Strict):
    kind: Literal["Volume"]
    metadata: Metadata
    spec: VolumeSpec


class SecretDoc(Strict):
    kind: Literal["Secret"]
    metadata: Metadata
    spec: SecretSpec


class GuestDoc(Strict):
    kind: Literal["Guest"]
    metadata: Metadata
    spec: GuestSpec


class GuestClassDoc(Strict):
    """Guest fields that Guests naming it (spec.class) share; expanded before validation (expand.py)."""

    kind: Literal["GuestClass"]
    metadata: Metadata
    spec: dict = Field(description="any Guest spec fields; a Guest's own fields override them key by key")


class GuestSetSpec(Strict):
    count: int = Field(ge=0, le=10_000, description="how many guests")
    start: int = Field(1, ge=0, le=1_000_000, description="the first index")
    name: str = Field("{metadata.name}-{{ index }}", description="each guest's name, a jinja2 expression over "
                                                                 "index and count")
    template: dict = Field(description="a Guest spec (may name a class); its strings are jinja2 expressions "
                                       "over index and count, e.g. \"52:54:00:10:00:{{ '%02x' % index }}\"")


class GuestSetDoc(Strict):
    """`count` Guests from one template; expanded before validation (expand.py)."""

    kind: Literal["GuestSet"]
    metadata: Metadata
    spec: GuestSetSpec


DOC_MODELS = {m.model_fields["kind"].annotation.__args__[0]: m
              for m in (HostDoc, BridgeDoc, SecretDoc, NetworkDoc, StoragePoolDoc, VolumeDoc, GuestDoc)}
Document = Annotated[Union[HostDoc, BridgeDoc, SecretDoc, NetworkDoc, StoragePoolDoc, VolumeDoc, GuestDoc],
                     Field(discriminator="kind")]
KINDS = tuple(DOC_MODELS)
