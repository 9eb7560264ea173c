"""Plan the deletion of owned objects that left the manifests (pure). Deletions run last, in
reverse dependency order: guests, volumes, pools, networks."""
from __future__ import annotations

from . import fields
from .inventory import unreadable
from .live import HostState
from .ownership import Record
from .plan import Action, Change, Op

DELETE_ORDER = ("Guest", "Volume", "StoragePool", "Network")
_OPS = {
    "Guest": lambda live: ([Op("shutdown")] if live.active else []) + [Op("undefine")],
    "Volume": lambda live: [Op("delete_volume", dict(zip(("pool", "volume"), live.name.split("/", 1)))),
                            Op("forget")],
    "StoragePool": lambda live: ([Op("stop")] if live.active else []) + [Op("undefine"), Op("forget")],
    "Network": lambda live: ([Op("stop")] if live.active else []) + [Op("undefine")],
}
_IMPACT = {"Guest": "disruptive", "Volume": "destructive", "StoragePool": "disruptive", "Network": "disruptive"}
_KEPT = {"Guest": "its disks are kept", "Volume": "its data is deleted",
         "StoragePool": "its directory and files are kept", "Network": ""}


def protected_message(host: str, kind: str, name: str, rec: Record) -> str:
    return (f"{host}/{kind}/{name} left the manifests but is protected (protect: true when last applied"
            f"{', commit ' + rec.commit[:12] if rec.commit else ''}). To delete it, put it back with "
            f"'protect: false', apply, then remove it; to keep it and stop managing it, run "
            f"'virt-reconcile forget {kind}/{name} PATH --host {host}'")


def plan_prune(host: str, declared: set[tuple[str, str]], owned: dict[tuple[str, str], Record],
               state: HostState) -> tuple[list[Action], list[str]]:
    """Delete actions for owned, undeclared objects; problems for protected ones."""
    actions: list[Action] = []
    problems: list[str] = []
    stale = sorted((k for k in owned if k not in declared), key=lambda k: (DELETE_ORDER.index(k[0]), k[1]))
    for kind, name in stale:
        rec, live = owned[(kind, name)], state.get(kind, name)
        if rec.protect:
            problems.append(protected_message(host, kind, name, rec))
            continue
        if live is None and unreadable(state, kind, name):
            continue                                  # in an inactive pool: cannot tell, keep it
        if live is None:
            if kind in ("StoragePool", "Volume"):     # only its record is left
                actions.append(Action(host, kind, name, "delete", "live", "gone from the host; its record is removed",
                                      [Change("owner", rec.hash, None, "live")], rec.fields, None, [Op("forget")]))
            continue
        deps = [a.address for a in actions if a.kind in DELETE_ORDER[:DELETE_ORDER.index(kind)]]
        reason = f"owned (applied from {rec.commit[:12] or 'an unknown commit'}) and no longer in the manifests"
        reason += f"; {_KEPT[kind]}" if _KEPT[kind] else ""
        before = fields.read(kind, live.xml)
        actions.append(Action(host, kind, name, "delete", _IMPACT[kind], reason,
                              [Change(kind.lower(), name, None, _IMPACT[kind])], before, None,
                              _OPS[kind](live), deps))
    return actions, problems
