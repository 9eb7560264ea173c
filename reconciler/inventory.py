"""What a host holds, seen from one instance: managed, missing, unmanaged, other instances' (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from . import ownership
from .kinds import KIND_ORDER, has_marker
from .live import HostState


@dataclass
class Entry:
    kind: str
    name: str
    status: str          # managed | missing | unmanaged | other-instance | broken
    state: str = ""      # running/shutoff, active/inactive
    commit: str = ""
    applied: str = ""
    dirty: bool = False
    instance: str = ""
    unmanaged: list[str] | None = None   # parts no field manages (status --show-unmanaged)


def unreadable(state: HostState, kind: str, name: str) -> bool:
    """A volume whose pool exists but is inactive: its absence from the listing proves nothing."""
    pool = name.split("/")[0]
    return kind == "Volume" and pool not in state.listed_pools and state.get("StoragePool", pool) is not None


def _run_state(kind: str, obj) -> str:
    if obj is None:
        return "absent"
    if kind == "Guest":
        return "running" if obj.active else "shutoff"
    return "active" if obj.active else "inactive"


def _other_inventories(state: HostState, instance: str) -> dict[tuple[str, str], str]:
    """Pools and volumes recorded by other instances (their record secrets, or legacy inventory
    domains)."""
    found = {}
    for (kind, name), obj in state.objects.items():
        if kind == "Guest" and name.startswith(ownership.INVENTORY_PREFIX) and name != ownership.inventory_name(instance):
            for key, rec in ownership.read_inventory(obj.root).items():
                found[key] = rec.instance
    for key, rec in ownership.secret_records(state).items():
        if rec.instance != instance:
            found[key] = rec.instance
    return found


def host_inventory(state: HostState, instance: str) -> list[Entry]:
    """Every object of the host (volumes: of listed pools), classified for `instance`."""
    owned = ownership.records(state, instance)
    entries = []
    for (kind, name), rec in owned.items():
        obj = state.get(kind, name)
        if (kind, name) in state.broken:
            entries.append(Entry(kind, name, "broken", state.broken[(kind, name)], rec.commit, rec.applied,
                                 rec.dirty, rec.instance))
            continue
        if obj is None and unreadable(state, kind, name):
            entries.append(Entry(kind, name, "managed", "unknown (pool inactive)", rec.commit, rec.applied,
                                 rec.dirty, rec.instance))
            continue
        entries.append(Entry(kind, name, "managed" if obj else "missing", _run_state(kind, obj),
                             rec.commit, rec.applied, rec.dirty, rec.instance))
    others = _other_inventories(state, instance)
    for (kind, name), obj in state.objects.items():
        if (kind, name) in owned or ownership.is_internal(kind, name):
            continue
        marker = obj.marker if has_marker(kind) else None
        other = marker.instance if marker else others.get((kind, name), "")
        status = "other-instance" if other and other != instance else "unmanaged"
        entries.append(Entry(kind, name, status, _run_state(kind, obj), instance=other))
    for (kind, name), why in state.broken.items():
        if (kind, name) not in owned and not ownership.is_internal(kind, name):
            entries.append(Entry(kind, name, "broken", why))
    statuses = ("managed", "missing", "unmanaged", "other-instance", "broken")
    return sorted(entries, key=lambda e: (statuses.index(e.status), KIND_ORDER.index(e.kind), e.name))
