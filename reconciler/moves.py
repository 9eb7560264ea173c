"""Guests (and the volumes they use) whose `metadata.host` changed: found by reading both hosts,
planned as one `move` on the new host instead of a create there and a removal on the old one.

A running guest moves by live migration (the saved definition it has goes with it), a shut-off
one by defining that definition on the new host and undefining it on the old one: UUID, MACs and
everything the manifest does not state stay as they were. Its volumes must be on storage both
hosts see (the same path in a pool of the same name): their ownership records move."""
from __future__ import annotations

from dataclasses import dataclass

from . import desired as desired_mod, ownership, planners
from .live import HostState
from .manifest import Item, Manifest
from .plan import Action, Change, Op, OpName, worst

MOVABLE = ("Guest", "Volume")


@dataclass(frozen=True)
class Move:
    kind: str
    name: str
    source: str        # the host that has it (and owns it, and no longer declares it)
    target: str        # the host the manifests now put it on


def find(manifest: Manifest, states: dict[str, HostState]) -> tuple[dict[tuple[str, str, str], Move], list[str]]:
    """Moves between the hosts read ((target, kind, name) -> Move), and the problems of moves that
    cannot be made."""
    owned = {host: ownership.records(state, manifest.hosts[host].spec.instance) for host, state in states.items()}
    declared = {host: {(i.ref.kind, i.ref.name) for i in manifest.for_host(host)} for host in states}
    moves, problems = {}, []
    for target, state in states.items():
        for item in manifest.for_host(target):
            key = (item.ref.kind, item.ref.name)
            if item.ref.kind not in MOVABLE or key in owned[target]:
                continue
            here = state.get(*key)
            sources = [host for host, other in states.items() if host != target and key in owned[host]
                       and key not in declared[host] and other.get(*key) is not None]
            if not sources:
                continue
            if len(sources) > 1:
                problems.append(f"{target}/{key[0]}/{key[1]}: owned by several hosts that no longer declare it "
                                f"({', '.join(sources)}): move it from one of them by hand")
                continue
            source = sources[0]
            if item.ref.kind == "Guest" and here is None:
                moves[(target, *key)] = Move(*key, source, target)
            elif item.ref.kind == "Volume" and _shared(state, states[source], key[1], here):
                moves[(target, *key)] = Move(*key, source, target)
    for move in [m for m in moves.values() if m.kind == "Guest"]:
        problems += _unshared_disks(manifest, states, moves, move)
    return moves, problems


def _shared(target: HostState, source: HostState, volume: str, here) -> bool:
    """Does the target see the source's volume file: listed there at the same path, or its pool of
    that name has the same directory (a pool lists files as they were when it last scanned; the
    move scans it again and fails when the file is not there)."""
    there = source.get("Volume", volume)
    if here is not None:
        return here.root.findtext("target/path") == there.root.findtext("target/path")
    pool = volume.split("/")[0]
    mine, theirs = target.get("StoragePool", pool), source.get("StoragePool", pool)
    return mine is not None and theirs is not None and \
        mine.root.findtext("target/path") == theirs.root.findtext("target/path")


def _unshared_disks(manifest: Manifest, states: dict[str, HostState], moves: dict, move: Move) -> list[str]:
    """A moving guest's declared volumes the new host does not see at the same path: moving the
    guest would leave its data behind (copying volumes between hosts is not done)."""
    item = manifest.get(move.target, "Guest", move.name)
    out = []
    for disk in item.spec.disks:
        if disk.volume and (move.target, "Volume", disk.volume) not in moves and \
                states[move.source].get("Volume", disk.volume) is not None and \
                states[move.target].get("Volume", disk.volume) is None:
            out.append(f"{item.source.file}:{item.source.line}: Guest {move.name} moves from {move.source} to "
                       f"{move.target}, but its volume {disk.volume} is not on storage both hosts share (no "
                       f"pool {disk.volume.split('/')[0]} on {move.target} with that file): a move needs shared "
                       "storage; copy the volume first, or keep the guest where it is")
    return out


def action(move: Move, item: Item, manifest: Manifest, states: dict[str, HostState],
           ctx: desired_mod.Context, source_instance: str) -> Action:
    """The `move` action on the new host: the object as it is on the old one, then what the
    manifest changes, all on the new host."""
    source, target = states[move.source], states[move.target]
    live = source.get(move.kind, move.name)
    record = ownership.records(source, source_instance).get((move.kind, move.name))
    if move.kind == "Volume":
        want = desired_mod.build(item, manifest, target, ctx)      # the file, as the new host sees it
        update = planners.volume(want, target.get(move.kind, move.name) or live, None)   # its record written
        pool, _, volume = move.name.partition("/")
        ops = [Op(OpName.FIND_VOLUME, {"pool": pool, "volume": volume, "source": move.source})] + \
            (update.ops if update else []) + [Op(OpName.FORGET_ON, {"source": move.source, "instance": source_instance})]
        how = "its file is on storage both hosts share: the ownership record moves"
    else:
        want = desired_mod.BUILDERS["Guest"](item, manifest, live, target, ctx)   # identity from the old host
        update = planners.guest(want, live, record)
        later = update.ops if update else []
        if not any(op.name is OpName.EDIT for op in later):
            later.append(Op(OpName.EDIT, {"edits": [], "marker": want.marker}))   # the new host's owner marker
        running = live.active
        address = manifest.hosts[move.target].spec.migration_address
        ops = [Op(OpName.MIGRATE, {"source": move.source, "live": running, "address": address})] + later
        how = ("it runs: live migration, its saved definition persisted on the new host and removed from the "
               "old one" if running else "it is shut off: its saved definition is defined on the new host and "
               "removed from the old one")
    changes = [Change("host", move.source, move.target, "live")] + (update.changes if update else [])
    changes = [c for c in changes if c.path != "owner.hash"]
    return Action(move.target, move.kind, move.name, "move", worst(c.impact for c in changes),
                  f"moves from host {move.source} ({how})", changes, live.values, want.fields, ops, want.deps)
