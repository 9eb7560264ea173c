"""What a host will refuse, found at plan time from what was read (pure: no libvirt calls).

Validation knows libvirt's own limits; these depend on the host: the domain types and machine
types it offers (with their vCPU limits), its memory, and the free space of its pools."""
from __future__ import annotations

from . import fields
from .errors import Diagnostic
from .live import HostState
from .manifest import Item
from .units import human_size


def _diag(item: Item, path: tuple, message: str) -> Diagnostic:
    return Diagnostic(item.source.file, item.source.line_of(path), ".".join(str(p) for p in path), message)


def _guest(item: Item, state: HostState) -> list[Diagnostic]:
    spec, facts, out = item.spec, state.facts, []
    where = f"host {state.host!r}"
    if spec.type and spec.type not in facts.domain_types:
        offered = ", ".join(sorted(facts.domain_types)) or "none"
        out.append(_diag(item, ("spec", "type"), f"{where} offers no {spec.type!r} guests (it offers: {offered})"))
    if facts.machines and spec.machine not in facts.machines:
        newest = sorted((m for m in facts.machines if m.startswith(("pc-q35-", "pc-i440fx-"))), reverse=True)[:4]
        known = ", ".join(["q35", "pc"] + newest)
        out.append(_diag(item, ("spec", "machine"), f"{where} has no machine type {spec.machine!r} (e.g. {known})"))
    elif spec.machine in facts.machines and spec.vcpus.max > facts.machines[spec.machine]:
        out.append(_diag(item, ("spec", "vcpus"), f"machine type {spec.machine!r} takes at most "
                                                  f"{facts.machines[spec.machine]} vCPUs on {where}"))
    live = state.get("Guest", item.ref.name)
    starts = spec.state == "running" and (live is None or not live.active)
    if starts and facts.memory_kib and spec.memory.max > facts.memory_kib * 1024:
        out.append(_diag(item, ("spec", "memory", "max"),
                         f"{human_size(spec.memory.max)} is more than the {human_size(facts.memory_kib * 1024)} "
                         f"of memory {where} has: QEMU cannot start it"))
    return out


def _raw_volumes(items: list[Item], state: HostState) -> list[Diagnostic]:
    """New raw volumes are allocated in full: they must fit in their pool's free space."""
    out, wanted = [], {}
    for item in items:
        if item.ref.kind != "Volume" or item.spec.format != "raw" or state.get("Volume", item.ref.name):
            continue
        pool = state.get("StoragePool", item.spec.pool)
        if pool is None or item.spec.pool not in state.listed_pools:
            continue
        found = pool.root.xpath("available")
        free = fields.size(found[0]) if found else None
        wanted[item.spec.pool] = wanted.get(item.spec.pool, 0) + item.spec.capacity
        if free is not None and wanted[item.spec.pool] > free:
            out.append(_diag(item, ("spec", "capacity"),
                             f"raw volumes are allocated in full, and pool {item.spec.pool!r} has "
                             f"{human_size(free)} free for {human_size(wanted[item.spec.pool])} of new raw volumes"))
    return out


def problems(items: list[Item], state: HostState) -> list[Diagnostic]:
    """Everything in `items` (one host's objects) that this host would refuse."""
    out = []
    for item in items:
        if item.ref.kind == "Guest":
            out += _guest(item, state)
    return out + _raw_volumes(items, state)
