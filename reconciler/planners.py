"""Per-kind planners: desired vs live -> Action (pure: no libvirt, no I/O)."""
from __future__ import annotations

from lxml import etree

from . import escape, fields
from .desired import Desired
from .diff import FieldChange, diff, flatten, running_diff
from .edit import Edit
from .liverules import LiveChange
from .live import LiveObject
from .ownership import Record, restart_pending, saved_hash
from .plan import Action, Change, Op, OpName, worst


def _action(desired: Desired, action: str, reason: str, changes: list[Change], ops: list[Op],
            before: dict | None) -> Action:
    ref = desired.ref
    return Action(ref.host, ref.kind, ref.name, action, worst(c.impact for c in changes), reason,
                  changes, before, desired.fields, ops, desired.deps)


def _settled(desired: Desired, field_changes: list[FieldChange]) -> list[FieldChange]:
    """Stated fields that libvirt's define (or a hot-plug) moves, written again by every edit (free
    hot-plug ports: a device hot-plugged or defined takes one)."""
    named = {fc.path for fc in field_changes}
    return [FieldChange(name, None, value) for name, value in desired.fields.items()
            if name not in named and getattr(fields.declaration(desired.ref.kind, [name]), "settle", False)]


def _edit(desired: Desired, field_changes: list[FieldChange], marker: bool = True) -> Op:
    """The op that writes `field_changes` (and the owner marker) into the saved definition in place."""
    edits = []
    for fc in field_changes + _settled(desired, field_changes):
        parts = tuple(fc.parts)
        xml = desired.parts.get(parts) if fc.after is not None and len(parts) == 2 else None
        edits.append(Edit(parts, getattr(fc.after, "token", None) or fc.after, xml).to_json())
    return Op(OpName.EDIT, {"edits": edits, "marker": desired.marker if marker else None})


def _changes(desired: Desired, have: dict, record: Record | None) -> list[FieldChange]:
    """Three-way: what the manifest states, and the resets of what it stated at the last apply."""
    kind = desired.ref.kind
    return diff(desired.fields, have, record.fields if record else None, fields.REQUIRED[kind], desired.exclusive)


def _created(desired: Desired) -> list[Change]:
    """The fields of a new object, without empty collections and values libvirt implies."""
    return [Change(desired.manifest_path(path.split(".")), None, value, "live")
            for path, value in flatten(desired.fields)
            if not fields.is_default(desired.ref.kind, path.split("."), value)]


def _marker(field_changes, live: LiveObject, desired: Desired) -> list[Change]:
    """Show a refresh of the owner marker when nothing else changes (so no action is silent)."""
    if field_changes or (desired.autostart is not None and desired.autostart != live.autostart):
        return []
    return [Change("owner.hash", saved_hash(live), desired.hash, "live")]


def _autostart(desired: Desired, live: LiveObject, ops: list[Op]) -> list[Change]:
    if desired.autostart is None or desired.autostart == live.autostart:
        return []
    ops.append(Op(OpName.SET_AUTOSTART, {"flag": desired.autostart}))
    return [Change("autostart", live.autostart, desired.autostart, "live")]


# --- Guest ------------------------------------------------------------------------------------

def _free_pci_slots(root) -> int:
    """Hot-plug capacity of a running guest: free pcie-root-ports on q35, plenty on i440fx."""
    if not root.xpath("devices/controller[@type='pci'][@model='pcie-root']"):
        return 8
    return fields.free_root_ports(root)


def _live_op(desired: Desired, fc: FieldChange, running: dict, slots: list[int], ops: list[Op],
             root=None) -> Op | None:
    """The op its declaration's live rule gives for `fc` on the running object (`root`: its XML,
    parsed), or None."""
    rule = fields.live_rule(desired.ref.kind, fc.parts)
    if rule is None:
        return None
    key = tuple(fc.parts[:2])
    item = desired.fields.get(key[0], {}).get(key[1]) if len(key) == 2 and isinstance(
        desired.fields.get(key[0]), dict) else None
    spec = fields.declaration(desired.ref.kind, fc.parts) if len(fc.parts) == 2 and fc.after is None else None
    found = spec.find(root, fc.parts[1]) if isinstance(spec, fields.Items) and root is not None else None
    element = etree.tostring(found, encoding="unicode") if found is not None else None
    return rule(LiveChange(fc.parts, fc.before, fc.after, running, desired.parts.get(key), item, slots, ops, element))


def guest(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    if live is None:
        ops = [Op(OpName.DEFINE_DOMAIN, {"xml": desired.xml})]
        ops += [_edit(desired, [])] if _settled(desired, []) else []     # what libvirt's define moved, set again
        ops += [Op(OpName.SET_AUTOSTART, {"flag": True})] if desired.autostart else []
        ops += [Op(name) for name in _STATE_OPS.get(("shutoff", desired.state), ("", []))[1]]
        return _action(desired, "create", "not on the host", _created(desired), ops, None)
    have = live.values
    field_changes = _changes(desired, have, record) + escape.changes(desired.xml_edits, live.root)
    running = live.active and live.live_xml is not None
    changes, ops, live_ops = [], [], []
    if running:
        run_values, slots = fields.read("Guest", live.live_root), [_free_pci_slots(live.live_root)]
        for fc in field_changes:
            op = _live_op(desired, fc, run_values, slots, live_ops, live.live_root)
            live_ops += [op] if op and op not in live_ops else []
            changes.append(Change(desired.manifest_path(fc.parts), fc.before, fc.after, "live" if op else "restart"))
    else:
        changes = [Change(desired.manifest_path(fc.parts), fc.before, fc.after, "live") for fc in field_changes]
    pending = restart_pending(live)
    if running and not pending:         # the running guest should run what is saved
        changes += _running_changes(desired, field_changes, run_values, slots, live_ops)
    if field_changes or saved_hash(live) != desired.hash:
        ops += live_ops + [_edit(desired, field_changes)]
        changes += _marker(field_changes, live, desired)
        if running and all(c.impact == "live" for c in changes) and not pending:
            ops.append(Op(OpName.SET_LIVE_OWNER, {"xml": desired.marker}))
    changes += _autostart(desired, live, ops)
    if running and not field_changes and not any(o in ops for o in live_ops):
        ops = live_ops + ops             # only the running guest differs: live ops alone
    needs_restart = any(c.impact == "restart" for c in changes) or pending
    now = "shutoff" if not live.active else "paused" if live.paused else "running"
    if desired.state != now:
        state_change = _STATE_OPS[(now, desired.state)]
        changes.append(Change("state", now, desired.state, state_change[0]))
        ops += [Op(name) for name in state_change[1]]
    elif needs_restart and now == "running":
        if pending and not field_changes:
            changes.append(Change("definition", "running an older definition", "saved definition", "restart"))
        ops.append(Op(OpName.RESTART))
    if not changes and not ops:
        return None
    verb, reason = _guest_verb(changes, field_changes, pending)
    return _action(desired, verb, reason, changes, ops, have)


# (live state, wanted state) -> (impact, ops); a paused guest cannot shut down: it is powered off.
_STATE_OPS = {
    ("shutoff", "running"): ("live", [OpName.START]),
    ("shutoff", "paused"): ("live", [OpName.START, OpName.SUSPEND]),
    ("running", "shutoff"): ("disruptive", [OpName.SHUTDOWN]),
    ("running", "paused"): ("disruptive", [OpName.SUSPEND]),
    ("paused", "running"): ("live", [OpName.RESUME]),
    ("paused", "shutoff"): ("disruptive", [OpName.STOP]),
}
_STATE_VERBS = {("shutoff", "running"): "start", ("shutoff", "paused"): "start", ("running", "paused"): "pause",
                ("paused", "running"): "resume"}


def _running_changes(desired: Desired, field_changes, run_values: dict, slots: list[int],
                     live_ops: list[Op]) -> list[Change]:
    """Fields declared `runtime` whose running value differs from the saved one the manifest
    wants (changed with `virsh setvcpus --live`, `change-media --live`...): made live again
    through their live rule (else they wait for a restart). Shown as `PATH (running)`."""
    saved = {fc.path for fc in field_changes}
    out = []
    for fc in running_diff(desired.ref.kind, desired.fields, run_values):
        if fc.path in saved:
            continue
        op = _live_op(desired, fc, run_values, slots, live_ops)
        live_ops += [op] if op and op not in live_ops else []
        out.append(Change(desired.manifest_path(fc.parts) + " (running)", fc.before, fc.after,
                          "live" if op else "restart"))
    return out


def _guest_verb(changes: list[Change], field_changes, pending: bool) -> tuple[str, str]:
    paths = {c.path for c in changes}
    if not field_changes and paths <= {"state", "definition", "autostart"}:
        if "state" in paths:
            state = next(c for c in changes if c.path == "state")
            return _STATE_VERBS.get((state.before, state.after), "stop"), "state differs from the manifest"
        if "definition" in paths:
            return "restart", "the running guest differs from its saved definition: a restart is pending"
    if not field_changes and all(c.path.endswith(" (running)") for c in changes):
        return "update", "the running guest differs from its saved definition (changed live only)"
    if any(c.impact == "restart" for c in changes):
        return "update", "saved definition changes; the running guest keeps the old one until it restarts"
    return "update", "fields differ from the manifest"


# --- Network ----------------------------------------------------------------------------------

def network(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    if live is None:
        ops = [Op(OpName.DEFINE_NETWORK, {"xml": desired.xml}), Op(OpName.START)]
        ops += [Op(OpName.SET_AUTOSTART, {"flag": True})] if desired.autostart else []
        return _action(desired, "create", "not on the host", _created(desired), ops, None)
    have = live.values
    changes, ops, needs_restart = [], [], False
    field_changes = _changes(desired, have, record)
    for fc in field_changes:
        op = _live_op(desired, fc, {}, [0], ops, live.root) if live.active else None
        if op is not None and op not in ops:
            ops.append(op)
        needs_restart = needs_restart or (live.active and op is None)
        impact = "disruptive" if live.active and op is None else "live"
        changes.append(Change(desired.manifest_path(fc.parts), fc.before, fc.after, impact))
    if changes or saved_hash(live) != desired.hash:
        ops.append(_edit(desired, field_changes))
        changes += _marker(changes, live, desired)
    if needs_restart:
        ops += [Op(OpName.STOP), Op(OpName.START), Op(OpName.REPLUG_GUESTS)]
    elif not live.active:
        changes.append(Change("state", "inactive", "active", "live"))
        ops.append(Op(OpName.START))
    changes += _autostart(desired, live, ops)
    if not changes and not ops:
        return None
    reason = ("changes that virNetworkUpdate cannot make: the network restarts; running guests' NICs "
              "on it are re-plugged on a local host, on a remote host they lose their link until the "
              "guests restart") if needs_restart else "fields differ"
    return _action(desired, "update", reason, changes, ops, have)


# --- Storage ----------------------------------------------------------------------------------

def _record(desired: Desired, record: Record | None) -> list[Op]:
    """Write the inventory record of a pool or volume (before the object changes) when it is stale."""
    if record is not None and record.hash == desired.hash:
        return []
    entry = {"kind": desired.ref.kind, "name": desired.ref.name, "uuid": desired.uuid} | desired.owner
    return [Op(OpName.RECORD, {"instance": desired.owner["instance"], "record": entry})]


def _build(desired: Desired) -> Op:
    return Op(OpName.BUILD_POOL, dict(desired.make))


def _overwrite(desired: Desired) -> list[Change]:
    """A pool that may format its device when it holds other data: destructive (--allow-destroy)."""
    return [Change("overwrite", None, True, "destructive")] if desired.make.get("overwrite") else []


def pool(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    if live is None:
        ops = _record(desired, record) + [Op(OpName.DEFINE_POOL, {"xml": desired.xml}), _build(desired), Op(OpName.START)]
        ops += [Op(OpName.SET_AUTOSTART, {"flag": True})] if desired.autostart else []
        return _action(desired, "create", "not on the host", _created(desired) + _overwrite(desired), ops, None)
    have = live.values
    impact = "disruptive" if live.active else "live"
    field_changes = _changes(desired, have, record)
    changes = [Change(desired.manifest_path(fc.parts), fc.before, fc.after, impact) for fc in field_changes]
    ops = [_edit(desired, field_changes, marker=False)] if changes else []
    if changes and live.active:
        ops += [Op(OpName.STOP), _build(desired), Op(OpName.START)]
    elif not live.active:   # build first: a run killed after define left no directory (build is idempotent)
        changes.append(Change("state", "inactive", "active", "live"))
        ops += [_build(desired), Op(OpName.START)]
    if any(op.name == OpName.BUILD_POOL for op in ops):
        changes += _overwrite(desired)
    changes += _autostart(desired, live, ops)
    marker = _record(desired, record)
    if marker and not changes:
        changes.append(Change("owner.hash", record.hash if record else None, desired.hash, "live"))
    if not changes:
        return None
    reason = "its ownership record is written" if [c.path for c in changes] == ["owner.hash"] \
        else "fields differ; a changed pool is restarted"
    return _action(desired, "update", reason, changes, marker + ops, have)


def _create_volume(desired: Desired, where: dict, if_missing: bool = False) -> Op:
    return Op(OpName.CREATE_VOLUME, {**where, "xml": desired.xml, **desired.make}
              | ({"if_missing": True} if if_missing else {}))


def _recreate(desired: Desired, where: dict, marker: list[Op], change: Change, why: str, have: dict) -> Action:
    ops = marker + [Op(OpName.DELETE_VOLUME, where), _create_volume(desired, where)]
    return _action(desired, "recreate", f"{why}: it is deleted and created again", [change], ops, have)


def volume(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    pool_name, _, vol_name = desired.ref.name.partition("/")
    where = {"pool": pool_name, "volume": vol_name}
    marker = _record(desired, record)
    if live is None:
        ops = marker + [_create_volume(desired, where, if_missing=not desired.observed)]
        reason = "not in the pool" if desired.observed else (
            f"pool {pool_name} is inactive, so its volumes could not be read: created after the pool "
            "starts unless it exists (then the next plan compares it)")
        changes = _created(desired) + ([Change("encryption.passphrase", None, "(sensitive)", "live")]
                                       if desired.value_digest else []) + (_seed_changes(desired, None) if desired.seed else [])
        return _action(desired, "create", reason, changes, ops, None)
    have = live.values
    field_changes = _changes(desired, have, record)
    remade = _seed_changes(desired, record, field_changes) if desired.seed else []
    if remade:
        # the record is written after the new image is made: a failed run leaves the old digest,
        # so the next plan makes it again
        ops = [Op(OpName.DELETE_VOLUME, where), _create_volume(desired, where)] + marker
        return _action(desired, "recreate", "a cloud-init seed is made from its documents: it is deleted and made "
                       "again from them. It holds no guest data (cloud-init reads it at first boot; a running "
                       "guest keeps the image it has open until it restarts)", remade, ops, have)
    changes, ops = [], []
    for fc in field_changes:
        path = desired.manifest_path(fc.parts)
        if fc.path in ("format", "backing", "encryption"):
            return _recreate(desired, where, marker, Change(path, fc.before, fc.after, "destructive"),
                             f"a volume's {fc.path} cannot change in place ({fc.before} -> {fc.after})", have)
        if fc.parts[0] == "permissions":
            changes.append(Change(path, fc.before, fc.after, "live"))
            continue
        shrink = fc.after < fc.before
        changes.append(Change(path, fc.before, fc.after, "destructive" if shrink else "live"))
        ops.append(Op(OpName.RESIZE_VOLUME, {**where, "capacity": fc.after, "shrink": shrink}))
    recorded = record.content.get("passphrase") if record else None
    if desired.value_digest and recorded and recorded != desired.value_digest:
        return _recreate(desired, where, marker, Change("encryption.passphrase", "(sensitive)", "(sensitive)",
                                                        "destructive"),
                         "a LUKS volume's passphrase cannot change in place (libvirt cannot re-key it)", have)
    if any(c.path.startswith("permissions.") for c in changes):
        ops.append(Op(OpName.SET_VOLUME_PERMISSIONS, {"path": live.root.findtext("target/path"),
                                                     **desired.fields["permissions"]}))
    if marker and not changes:
        changes.append(Change("owner.hash", record.hash if record else None, desired.hash, "live"))
    if not changes:
        return None
    paths = {c.path: c.impact for c in changes}
    reason = ("shrinking cuts off data at the end of the volume" if paths.get("capacity") == "destructive"
              else "capacity grows in place" if "capacity" in paths
              else "its file's mode or owner is set (on this machine only: libvirt has no call for it)"
              if ops else "its ownership record is written")
    return _action(desired, "update", reason, changes, marker + ops, have)


def _short(digest: str | None) -> str | None:
    return digest[:19] if digest else None          # sha256: and 12 hex digits


def _seed_changes(desired: Desired, record: Record | None, field_changes: list[FieldChange] = ()) -> list[Change]:
    """What makes a cloud-init seed again: documents whose digest differs from the record's (all
    of them when the record has none), and its capacity or format changed by hand (its mode and
    owner are set in place)."""
    recorded = (record.content.get("seed") if record else None) or {}
    return [Change(f"cloud_init.{name.replace('-', '_')}", _short(recorded.get(name)), _short(desired.seed.get(name)),
                   "live")
            for name in ("user-data", "meta-data", "network-config")
            if recorded.get(name) != desired.seed.get(name)] + \
        [Change(desired.manifest_path(fc.parts), fc.before, fc.after, "live")
         for fc in field_changes if fc.parts[0] != "permissions"]


# --- Secret -----------------------------------------------------------------------------------

def _value(desired: Desired, record: Record | None, ops: list[Op]) -> list[Change]:
    """Set the value when the manifest manages it and the record does not show it applied."""
    if desired.value is None or (record is not None and record.content.get("value") == desired.value_digest):
        return []
    ops.append(Op(OpName.SET_SECRET_VALUE, {"value": desired.value}))
    before = "(sensitive)" if record is not None and record.content.get("value") else None
    return [Change("value", before, "(sensitive)", "live")]


def secret(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    if live is None:
        ops = _record(desired, record) + [Op(OpName.DEFINE_SECRET, {"xml": desired.xml})]
        changes = _created(desired) + _value(desired, None, ops)
        return _action(desired, "create", "not on the host", changes, ops, None)
    have = live.values
    field_changes = _changes(desired, have, record)
    marker = _record(desired, record)
    if any((fc.path == "private" and fc.before and not fc.after) or fc.path == "ephemeral" for fc in field_changes):
        # libvirt refuses to make a private secret readable; a secret made ephemeral in place keeps
        # its file in /etc/libvirt/secrets after undefine, so it would come back at the next restart
        impact = "disruptive" if desired.value is not None else "destructive"
        changes = [Change(desired.manifest_path(fc.parts), fc.before, fc.after, impact) for fc in field_changes]
        ops = marker + [Op(OpName.UNDEFINE), Op(OpName.DEFINE_SECRET, {"xml": desired.xml})]
        changes += _value(desired, None, ops)
        return _action(desired, "recreate", "a private secret cannot become readable, nor a secret change between "
                       "saved and ephemeral, in place: it is defined again"
                       + (" with its value" if desired.value is not None else ", without a value"),
                       changes, ops, have)
    changes = [Change(desired.manifest_path(fc.parts), fc.before, fc.after, "live") for fc in field_changes]
    ops = [_edit(desired, field_changes, marker=False)] if field_changes else []
    changes += _value(desired, record, ops)
    if marker and not changes:
        changes.append(Change("owner.hash", record.hash if record else None, desired.hash, "live"))
    if not changes:
        return None
    return _action(desired, "update", "fields differ" if field_changes else "its value or record is written",
                   changes, marker + ops, have)


# --- Bridge -----------------------------------------------------------------------------------

_GUARDED = ("; it moves the interface that carries the connection to the host: apply needs --allow-disruptive "
            "and rolls it back unless the host answers again")


def _guarded(desired: Desired, live: LiveObject | None, field_changes: list[FieldChange]) -> bool:
    """The change moves what carries the connection to the host: a port that carries it joins
    the bridge, or the bridge that carries it changes its addresses or routes."""
    mgmt = set(desired.make["mgmt"])
    joining = set(desired.make["want"].get("ports") or []) - set(live.root.xpath("port/@name") if live is not None else [])
    moving = desired.ref.name in mgmt and any(fc.parts[0] in ("addresses", "gateway", "gateway6") for fc in field_changes)
    return bool(joining & mgmt) or moving


def _bridge_ops(desired: Desired, guarded: bool, stale: list[str]) -> list[Op]:
    guard = {"probe": desired.make["probe"]} if guarded else None     # apply adds the timeout
    persist = desired.make["files"] or stale
    ops = [Op(OpName.BRIDGE_PERSIST, {"files": desired.make["files"], "stale": stale})] if persist else []
    return [Op(OpName.BRIDGE_APPLY, {"want": desired.make["want"], "guard": guard})] + ops


def bridge(desired: Desired, live: LiveObject | None, record: Record | None = None) -> Action | None:
    marker = _record(desired, record)
    runtime = desired.make["backend"] == "runtime"
    kept = "" if not runtime else "; runtime only (Host spec.network_config): gone at the next boot"
    stale = sorted(set(record.content.get("files", []) if record else []) - set(desired.make["files"]))
    if live is None:
        field_changes = [FieldChange(path, None, value) for path, value in flatten(desired.fields)]
        guarded = _guarded(desired, None, field_changes)
        changes = [Change(c.path, c.before, c.after, "disruptive" if guarded else "live") for c in _created(desired)]
        return _action(desired, "create", "not on the host" + (_GUARDED if guarded else "") + kept, changes,
                       marker + _bridge_ops(desired, guarded, stale), None)
    have = live.values
    field_changes = _changes(desired, have, record)
    guarded = _guarded(desired, live, field_changes)
    impact = "disruptive" if guarded else "live"
    changes = [Change(desired.manifest_path(fc.parts), fc.before, fc.after, impact) for fc in field_changes]
    runtime_changes = [fc for fc in field_changes if fc.path != "persisted"] or not live.active
    if stale:
        changes.append(Change("network_config", stale, sorted(desired.make["files"]), "live"))
    ops = [op for op in _bridge_ops(desired, guarded, stale)
           if (op.name == OpName.BRIDGE_APPLY and runtime_changes)
           or (op.name == OpName.BRIDGE_PERSIST and (stale or any(fc.path == "persisted" for fc in field_changes)))]
    if marker and not changes:
        changes.append(Change("owner.hash", record.hash if record else None, desired.hash, "live"))
    if not changes:
        return None
    reason = ("fields differ" + (_GUARDED if guarded else "")) + kept
    return _action(desired, "update", reason, changes, marker + ops, have)


PLANNERS = {"Bridge": bridge, "Secret": secret, "Guest": guest, "Network": network, "StoragePool": pool, "Volume": volume}
