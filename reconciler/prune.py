"""Plan the deletion of owned objects that left the manifests (pure). Deletions run last, in
reverse dependency order: guests, volumes, pools, networks; each waits only for the deletions
it really depends on (a volume for the guests that use it, a pool for its volumes, a network for
the guests on it), so one failure skips only what depends on it."""
from __future__ import annotations

from . import fields, ownership
from .inventory import unreadable
from .kinds import KINDS, has_marker
from .live import HostState, LiveObject
from .ownership import Record
from .plan import Action, Change, Op, OpName

DELETE_ORDER = ("Guest", "Volume", "StoragePool", "Network", "Bridge", "Secret")


def _guest_ops(live: LiveObject, tpm: bool = False) -> list[Op]:
    undefine = Op(OpName.UNDEFINE, {"tpm": True} if tpm else {})
    if live.paused:                 # a paused guest cannot shut down: it is powered off
        return [Op(OpName.STOP), undefine]
    return ([Op(OpName.SHUTDOWN)] if live.active else []) + [undefine]


def _luks_secret(live: LiveObject) -> dict:
    """An encrypted volume's secret (usage: its path) goes with it."""
    encrypted = live.root.find("target/encryption") is not None
    return {"secret": live.root.findtext("target/path")} if encrypted else {}


_OPS = {
    "Guest": _guest_ops,
    "Volume": lambda live: [Op(OpName.DELETE_VOLUME, dict(zip(("pool", "volume"), live.name.split("/", 1)))
                               | _luks_secret(live)), Op(OpName.FORGET)],
    "StoragePool": lambda live: ([Op(OpName.STOP)] if live.active else []) + [Op(OpName.UNDEFINE), Op(OpName.FORGET)],
    "Network": lambda live: ([Op(OpName.STOP)] if live.active else []) + [Op(OpName.UNDEFINE)],
    "Secret": lambda live: [Op(OpName.UNDEFINE), Op(OpName.FORGET)],
}


def _bridge_ops(live: LiveObject, rec: Record) -> list[Op]:
    """A pruned bridge goes with the configuration files its record lists."""
    return [Op(OpName.BRIDGE_DELETE, {"files": rec.content.get("files", [])}), Op(OpName.FORGET)]


def protected_message(host: str, kind: str, name: str, rec: Record) -> str:
    return (f"{host}/{kind}/{name} left the manifests but is protected (protect: true when last applied"
            f"{', commit ' + rec.commit[:12] if rec.commit else ''}). To delete it, put it back with "
            f"'protect: false', apply, then remove it; to keep it and stop managing it, run "
            f"'virt-reconcile forget {kind}/{name} PATH --host {host}'")


def _gone(state: HostState, kind: str, name: str) -> bool:
    """Known to be absent: not listed, and not hidden by an inactive pool or unreadable XML."""
    return state.get(kind, name) is None and not unreadable(state, kind, name) and (kind, name) not in state.broken


def move_legacy_records(host: str, instance: str, state: HostState) -> list[Action]:
    """Records an older version kept in the instance's inventory domain move to secrets (as they
    are), then the domain goes: the tool's bookkeeping no longer shows up as a shut-off guest."""
    name = ownership.inventory_name(instance)
    if state.get("Guest", name) is None:
        return []
    legacy = ownership.legacy_records(state, instance)
    moved = ownership.secret_records(state, instance)
    ops = [Op(OpName.RECORD, {"instance": instance, "record": ownership.record_entry(kind, obj, rec)})
           for (kind, obj), rec in sorted(legacy.items()) if (kind, obj) not in moved]
    return [Action(host, "Guest", name, "delete", "live",
                   f"the tool's records of {len(legacy)} pools and volumes move from this never-started "
                   "inventory domain to libvirt secrets; the domain goes",
                   [Change("bookkeeping", "inventory domain", "libvirt secrets", "live")], None, None,
                   ops + [Op(OpName.UNDEFINE)], [])]


def forget_gone(host: str, declared: set[tuple[str, str]], owned: dict[tuple[str, str], Record],
                state: HostState) -> list[Action]:
    """Remove the records of owned pools and volumes that are gone from the host and from the
    manifests (nothing is left to delete, protected or not); done on every apply."""
    out = []
    for kind, name in sorted(owned, key=lambda k: (DELETE_ORDER.index(k[0]), k[1])):
        if not has_marker(kind) and (kind, name) not in declared and _gone(state, kind, name):
            rec = owned[(kind, name)]
            out.append(Action(host, kind, name, "delete", "live", "gone from the host and from the manifests; "
                              "its ownership record is removed", [Change("owner", rec.hash, None, "live")],
                              rec.fields, None, [Op(OpName.FORGET)]))
    return out


def _uses(state: HostState) -> dict[str, set[tuple[str, str]]]:
    """For each guest, the volumes and networks its saved definition uses."""
    by_path = {}
    for (kind, name), obj in state.objects.items():
        if kind == "Volume":
            path = obj.root.xpath("string(target/path)")
            if path:
                by_path[path] = name
    out = {}
    for (kind, name), obj in state.objects.items():
        if kind != "Guest":
            continue
        used = {("Network", n) for n in obj.root.xpath("devices/interface[@type='network']/source/@network")}
        for disk in obj.root.xpath("devices/disk/source"):
            if disk.get("pool") and disk.get("volume"):
                used.add(("Volume", f"{disk.get('pool')}/{disk.get('volume')}"))
            elif disk.get("file") in by_path:
                used.add(("Volume", by_path[disk.get("file")]))
        out[name] = used
    return out


def _deps(host: str, kind: str, name: str, actions: list[Action], uses: dict) -> list[str]:
    """Deletions that must succeed before this one."""
    out = []
    for action in actions:
        if action.kind == "Guest" and (kind, name) in uses.get(action.name, set()):
            out.append(action.address)
        elif kind == "StoragePool" and action.kind == "Volume" and action.name.split("/")[0] == name:
            out.append(action.address)
    return out


def left_manifests(declared: set[tuple[str, str]], owned: dict[tuple[str, str], Record],
                   state: HostState) -> list[tuple[str, str]]:
    """Owned objects that are on the host and no longer in the manifests, in deletion order
    (gone ones are forget_gone's; ones that cannot be read are kept)."""
    return sorted((k for k in owned if k not in declared and state.get(*k) is not None),
                  key=lambda k: (DELETE_ORDER.index(k[0]), k[1]))


def kept(host: str, declared: set[tuple[str, str]], owned: dict[tuple[str, str], Record],
         state: HostState) -> list[dict]:
    """What a plan without prune says of the objects that left the manifests: kept, and why."""
    out = []
    for kind, name in left_manifests(declared, owned, state):
        rec = owned[(kind, name)]
        how = ("protected: set protect: false and apply, then remove it, or 'virt-reconcile forget' it"
               if rec.protect else "apply --prune deletes it")
        out.append({"address": f"{host}/{kind}/{name}", "reason": f"owned, no longer in the manifests; kept ({how})"})
    return out


def plan_prune(host: str, declared: set[tuple[str, str]], owned: dict[tuple[str, str], Record],
               state: HostState, delete_tpm_state: bool = False) -> tuple[list[Action], list[str]]:
    """Delete actions for owned, undeclared objects that are on the host; problems for protected
    ones. A guest's TPM state is kept unless `delete_tpm_state`."""
    actions: list[Action] = []
    problems: list[str] = []
    uses = _uses(state)
    for kind, name in left_manifests(declared, owned, state):
        rec, live = owned[(kind, name)], state.get(kind, name)
        if rec.protect:
            problems.append(protected_message(host, kind, name, rec))
            continue
        reason = f"owned (applied from {rec.commit[:12] or 'an unknown commit'}) and no longer in the manifests"
        tpm = delete_tpm_state and kind == "Guest"
        keeps = "its disks are kept, its TPM state is deleted (--delete-tpm-state)" if tpm else KINDS[kind].delete_keeps
        reason += f"; {keeps}" if keeps else ""
        reason += "; it is paused, so it is powered off" if live.paused else ""
        actions.append(Action(host, kind, name, "delete", KINDS[kind].delete_impact, reason,
                              [Change(kind.lower(), name, None, KINDS[kind].delete_impact)], live.values,
                              None, _guest_ops(live, tpm) if kind == "Guest" else _bridge_ops(live, rec)
                              if kind == "Bridge" else _OPS[kind](live),
                              _deps(host, kind, name, actions, uses)))
    return actions, problems
