"""What a host holds, seen from one instance: managed, missing, unmanaged, other instances' (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from . import ownership
from .live import HostState


@dataclass
class Entry:
    kind: str
    name: str
    status: str          # managed | missing | unmanaged | other-instance
    state: str = ""      # running/shutoff, active/inactive
    commit: str = ""
    applied: str = ""
    dirty: bool = False
    instance: str = ""


def _run_state(kind: str, obj) -> str:
    if obj is None:
        return "absent"
    if kind == "Guest":
        return "running" if obj.active else "shutoff"
    return "active" if obj.active else "inactive"


def host_inventory(state: HostState, instance: str) -> list[Entry]:
    """Every object of the host (volumes: of listed pools), classified for `instance`."""
    owned = ownership.records(state, instance)
    entries = []
    for (kind, name), rec in owned.items():
        obj = state.get(kind, name)
        entries.append(Entry(kind, name, "managed" if obj else "missing", _run_state(kind, obj),
                             rec.commit, rec.applied, rec.dirty, rec.instance))
    for (kind, name), obj in state.objects.items():
        if (kind, name) in owned or ownership.is_internal(kind, name):
            continue
        marker = ownership.read_marker(obj.xml) if kind in ("Guest", "Network") else None
        status = "other-instance" if marker and marker.instance != instance else "unmanaged"
        entries.append(Entry(kind, name, status, _run_state(kind, obj),
                             instance=marker.instance if marker else ""))
    order = ("Network", "StoragePool", "Volume", "Guest")
    return sorted(entries, key=lambda e: (("managed", "missing", "unmanaged", "other-instance").index(e.status),
                                          order.index(e.kind), e.name))
