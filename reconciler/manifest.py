"""Validate SourceDocs into a Manifest: schema per kind, then references between objects."""
from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field

from pydantic import ValidationError

from .errors import Diagnostic, ManifestError
from .kinds import KIND_ORDER
from .expand import EXPANDED_KINDS, expand
from .loader import SourceDoc
from .models import (DOC_MODELS, POOL_SHAPES, VOLUME_POOLS, Dhcp, DhcpHost, GuestDoc, HostDoc, NetworkDoc, StoragePoolDoc, VolumeDoc,
                     dns_name_or_none)

# Order in which kinds are created; deletion runs the other way.


@dataclass(frozen=True, order=True)
class Ref:
    """Address of one object: host, kind and name (a volume's name is 'pool/volume')."""

    host: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.host}/{self.kind}/{self.name}"


@dataclass
class Item:
    """A validated document with its address and where it came from."""

    ref: Ref
    doc: NetworkDoc | StoragePoolDoc | VolumeDoc | GuestDoc
    source: SourceDoc
    declared_hosts: int | None = None    # a network's DHCP hosts in its own document (guests' leases follow)

    @property
    def spec(self):
        return self.doc.spec


@dataclass
class Manifest:
    """Every host and every object, validated and cross-checked."""

    hosts: dict[str, HostDoc] = field(default_factory=dict)
    items: dict[Ref, Item] = field(default_factory=dict)

    def for_host(self, host: str) -> list[Item]:
        """Objects of one host in creation order (kind order, a volume after the volume it is an
        overlay on or a clone of, then name)."""
        found = [i for r, i in self.items.items() if r.host == host]
        return sorted(found, key=lambda i: (KIND_ORDER.index(i.ref.kind), self._depth(i), i.ref.name))

    def _depth(self, item: Item, seen: frozenset = frozenset()) -> int:
        """How many volumes a volume is made from stand below it (backing or clone; 0 for anything else)."""
        backing = (item.spec.backing or item.spec.clone) if item.ref.kind == "Volume" else None
        below = self.get(item.ref.host, "Volume", backing) if backing and backing not in seen else None
        return 1 + self._depth(below, seen | {backing}) if below else 0

    def get(self, host: str, kind: str, name: str) -> Item | None:
        return self.items.get(Ref(host, kind, name))


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _schema_errors(src: SourceDoc, exc: ValidationError) -> list[Diagnostic]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(src.diagnostic(loc, msg))
    return out


def _parse(src: SourceDoc) -> tuple[object | None, list[Diagnostic]]:
    data = src.data
    if not isinstance(data, dict):
        return None, [Diagnostic(src.file, src.line, "", "a document must be a mapping with kind, metadata, spec")]
    kind = data.get("kind")
    model = DOC_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join([*DOC_MODELS, *EXPANDED_KINDS])
        return None, [src.diagnostic(("kind",), f"unknown kind {kind!r} (known: {known})")]
    try:
        return model.model_validate(data, context={"base": posixpath.dirname(posixpath.abspath(src.file))}), []
    except ValidationError as exc:
        return None, _schema_errors(src, exc)


def _host_of(doc, src: SourceDoc, hosts: dict[str, HostDoc]) -> tuple[str | None, Diagnostic | None]:
    wanted = doc.metadata.host
    if wanted is not None:
        if wanted in hosts:
            return wanted, None
        return None, src.diagnostic(("metadata", "host"), f"no Host named {wanted!r} is declared")
    if len(hosts) == 1:
        return next(iter(hosts)), None
    why = "no Host is declared" if not hosts else "several Hosts are declared: name one"
    return None, src.diagnostic(("metadata",), why, "metadata.host")


def build(sources: list[SourceDoc], problems: list[Diagnostic] | None = None) -> Manifest:
    """Validate every document and every reference; raise one ManifestError listing all problems
    (`problems` already found while loading included)."""
    problems = list(problems or [])
    sources, expanded = expand(sources)
    problems += expanded
    parsed = []
    for src in sources:
        doc, errs = _parse(src)
        problems += errs
        if doc is not None:
            parsed.append((doc, src))
    manifest = Manifest()
    seen: dict[Ref, SourceDoc] = {}
    for doc, src in parsed:
        if isinstance(doc, HostDoc):
            ref = Ref(doc.metadata.name, "Host", doc.metadata.name)
            if ref in seen:
                problems.append(_duplicate(src, seen[ref], ref))
            seen[ref] = src
            manifest.hosts[doc.metadata.name] = doc
    for doc, src in parsed:
        if isinstance(doc, HostDoc):
            continue
        host, err = _host_of(doc, src, manifest.hosts)
        if err:
            problems.append(err)
            continue
        name = f"{doc.spec.pool}/{doc.metadata.name}" if isinstance(doc, VolumeDoc) else doc.metadata.name
        ref = Ref(host, doc.kind, name)
        if ref in seen:
            problems.append(_duplicate(src, seen[ref], ref))
            continue
        seen[ref] = src
        manifest.items[ref] = Item(ref, doc, src)
    problems += check_references(manifest)
    problems += _leases(manifest)
    if problems:
        raise ManifestError(problems)
    return manifest


def _leases(manifest: Manifest) -> list[Diagnostic]:
    """A NIC's `ip` is a static DHCP lease: it joins its network's dhcp hosts (named after the
    guest where the guest's name is a DNS name). Errors stand at the NIC."""
    problems, leases = [], {}
    for item in [i for i in manifest.items.values() if i.ref.kind == "Guest"]:
        for n, nic in enumerate(item.spec.interfaces):
            net = manifest.get(item.ref.host, "Network", nic.network) if nic.ip else None
            if net is None:
                continue                 # no lease, or a missing network (check_references says so)
            subnet = net.spec.ipv4.address.network if net.spec.ipv4 else None
            if subnet is None or nic.ip not in subnet:
                where = f"{subnet} of Network {net.ref.name!r}" if subnet else f"Network {net.ref.name!r} (it has no ipv4)"
                problems.append(_diag(item, ("spec", "interfaces", n, "ip"), f"{nic.ip} is not inside {where}"))
                continue
            taken = {h.ip: h.mac for h in (net.spec.ipv4.dhcp.hosts if net.spec.ipv4.dhcp else [])}
            taken |= {h.ip: h.mac for h in leases.get(net.ref, [])}
            macs = set(taken.values())
            if nic.ip in taken or nic.mac in macs:
                problems.append(_diag(item, ("spec", "interfaces", n, "ip"),
                                      f"{nic.ip} or {nic.mac} already has a DHCP host on Network {net.ref.name!r}"))
                continue
            leases.setdefault(net.ref, []).append(DhcpHost(mac=nic.mac, ip=nic.ip, name=dns_name_or_none(item.ref.name)))
    for ref, hosts in leases.items():
        net = manifest.items[ref]
        dhcp = net.spec.ipv4.dhcp or Dhcp()
        ipv4 = net.spec.ipv4.model_copy(update={"dhcp": dhcp.model_copy(update={"hosts": [*dhcp.hosts, *hosts]})})
        doc = net.doc.model_copy(update={"spec": net.spec.model_copy(update={"ipv4": ipv4})})
        manifest.items[ref] = Item(ref, doc, net.source, len(dhcp.hosts))
    return problems


def _duplicate(src: SourceDoc, first: SourceDoc, ref: Ref) -> Diagnostic:
    return src.diagnostic(("metadata", "name"),
                          f"duplicate {ref.kind} {ref.name!r} on host {ref.host!r} (first at {first.file}:{first.line})")


def check_references(manifest: Manifest) -> list[Diagnostic]:
    """Dangling references and host-wide conflicts (subnets, bridges, pool paths)."""
    problems = []
    for item in manifest.items.values():
        problems += _REF_CHECKS.get(item.ref.kind, lambda m, i: [])(manifest, item)
    for host in manifest.hosts:
        problems += _host_conflicts(manifest.for_host(host))
    return problems


def _diag(item: Item, path: tuple, message: str) -> Diagnostic:
    return item.source.diagnostic(path, message)


def _volume_refs(manifest: Manifest, item: Item) -> list[Diagnostic]:
    out = []
    pool = manifest.get(item.ref.host, "StoragePool", item.spec.pool)
    if not pool:
        out.append(_diag(item, ("spec", "pool"), f"no StoragePool {item.spec.pool!r} is declared on host "
                                                 f"{item.ref.host!r}"))
    elif pool.spec.type not in VOLUME_POOLS:
        out.append(_diag(item, ("spec", "pool"), f"StoragePool {item.spec.pool!r} is a {pool.spec.type} pool: its "
                                                 "volumes are the device's partitions or the target's LUNs, not "
                                                 "made by the tool; a guest's disk names one as pool/volume"))
    source = manifest.get(item.ref.host, "Volume", item.spec.clone) if item.spec.clone else None
    if source and source.spec.capacity is not None and source.spec.capacity > item.spec.capacity:
        out.append(_diag(item, ("spec", "capacity"), f"a clone is at least as big as Volume {item.spec.clone!r} "
                                                     f"({source.spec.capacity} bytes)"))
    backing = item.spec.backing
    if backing and (backing == str(item.ref.name) or not manifest.get(item.ref.host, "Volume", backing)):
        out.append(_diag(item, ("spec", "backing"), f"no other Volume {backing!r} is declared on host "
                                                    f"{item.ref.host!r}"))
    return out


def _guest_refs(manifest: Manifest, item: Item) -> list[Diagnostic]:
    out = []
    host = item.ref.host
    for n, disk in enumerate(item.spec.disks):
        pool = manifest.get(host, "StoragePool", disk.volume.partition("/")[0]) if disk.volume else None
        if pool and pool.spec.type not in VOLUME_POOLS:
            continue        # a LUN or partition: found when the guest starts
        if disk.volume and not manifest.get(host, "Volume", disk.volume):
            out.append(_diag(item, ("spec", "disks", n, "volume"),
                             f"no Volume {disk.volume!r} is declared on host {host!r}"))
    for n, nic in enumerate(item.spec.interfaces):
        if nic.network and not manifest.get(host, "Network", nic.network):
            out.append(_diag(item, ("spec", "interfaces", n, "network"),
                             f"no Network {nic.network!r} is declared on host {host!r}"))
    return out


_REF_CHECKS = {"Volume": _volume_refs, "Guest": _guest_refs}


def _host_conflicts(items: list[Item]) -> list[Diagnostic]:
    out = []
    nets = [i for i in items if i.ref.kind == "Network"]
    for a, b in itertools.combinations(nets, 2):
        if a.spec.bridge and a.spec.bridge == b.spec.bridge:
            out.append(_diag(b, ("spec", "bridge"), f"bridge {b.spec.bridge!r} is also used by Network {a.ref.name!r}"))
        if a.spec.ipv4 and b.spec.ipv4 and a.spec.ipv4.address.network.overlaps(b.spec.ipv4.address.network):
            out.append(_diag(b, ("spec", "ipv4", "address"),
                             f"{b.spec.ipv4.address.network} overlaps {a.spec.ipv4.address.network} "
                             f"of Network {a.ref.name!r} (DHCP ranges and routes would clash)"))
    pools = [i for i in items if i.ref.kind == "StoragePool"]
    for a, b in itertools.combinations(pools, 2):
        if a.spec.path and a.spec.path == b.spec.path and POOL_SHAPES[b.spec.type][2] == "dir":
            out.append(_diag(b, ("spec", "path"), f"path {b.spec.path} is also the path of StoragePool {a.ref.name!r}"))
        shared = set(a.spec.source.devices if a.spec.source else []) & set(b.spec.source.devices if b.spec.source else [])
        if shared:      # libvirt: "Storage source conflict"
            out.append(_diag(b, ("spec", "source", "devices"), f"device {sorted(shared)[0]} is also a device of "
                                                               f"StoragePool {a.ref.name!r}"))
    macs: dict[str, Item] = {}
    for guest in (i for i in items if i.ref.kind == "Guest"):
        for n, nic in enumerate(guest.spec.interfaces):
            if nic.mac and nic.mac in macs and macs[nic.mac] is not guest:
                out.append(_diag(guest, ("spec", "interfaces", n, "mac"),
                                 f"MAC {nic.mac} is also used by Guest {macs[nic.mac].ref.name!r}"))
            elif nic.mac:
                macs[nic.mac] = guest
    return out
