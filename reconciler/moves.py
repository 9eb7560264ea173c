"""Guests (and the volumes they use) whose `metadata.host` changed: found by reading both hosts,
planned as one `move` on the new host instead of a create there and a removal on the old one.

A running guest moves by live migration (the saved definition it has goes with it), a shut-off
one by defining that definition on the new host and undefining it on the old one: UUID, MACs and
everything the manifest does not state stay as they were. A volume on storage both hosts see (the
same path in a pool of the same name) moves its ownership record; one the new host cannot see is
copied into its pool of that name (by the live migration of the running guest using it, else as a
stream), and the old copy stays on the old host, owned there, until it is pruned."""
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
    source: str         # the host that has it (and owns it, and no longer declares it)
    target: str         # the host the manifests now put it on
    copy: bool = False  # a volume the target cannot see: its data is copied


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
            elif item.ref.kind == "Volume" and here is None:
                if item.spec.encryption is not None:
                    problems.append(f"{item.source.file}:{item.source.line}: Volume {key[1]} moves from {source} "
                                    f"to {target} on storage they do not share, and an encrypted volume is not "
                                    "copied between hosts (its secret stays behind): copy it by hand")
                    continue
                moves[(target, *key)] = Move(*key, source, target, copy=True)
    for move in [m for m in moves.values() if m.kind == "Guest"]:
        problems += _left_behind(manifest, states, moves, move)
    return moves, problems


def _left_behind(manifest: Manifest, states: dict[str, HostState], moves: dict, move: Move) -> list[str]:
    """A moving guest's volumes that would not be on the new host: neither there nor moving there."""
    item = manifest.get(move.target, "Guest", move.name)
    live = states[move.source].get("Guest", move.name)
    return [f"{item.source.file}:{item.source.line}: Guest {move.name} moves from {move.source} to {move.target}, "
            f"but its volume {volume} is neither on {move.target} nor moving there: declare the Volume on "
            f"{move.target} too (it is then copied, or its record moves when both hosts share its storage)"
            for volume in sorted(set(_disk_volumes(live.root).values()))
            if (move.target, "Volume", volume) not in moves and states[move.target].get("Volume", volume) is None]


def _shared(target: HostState, source: HostState, volume: str, here) -> bool:
    """Does the target see the source's volume file: listed there at the same path, or its pool of
    that name has the same directory (a pool lists files as they were when it last scanned; the
    move scans it again and fails when the file is not there)."""
    if here is not None:
        return _same_path(here, source.get("Volume", volume))
    pool = volume.split("/")[0]
    return _same_path(target.get("StoragePool", pool), source.get("StoragePool", pool))


def _same_path(one, other) -> bool:
    """Two volumes, or two pools, at the same path (both there)."""
    return one is not None and other is not None and \
        one.root.findtext("target/path") == other.root.findtext("target/path")


def _disk_volumes(root) -> dict[str, str]:
    """A guest's disks that are volumes: target -> pool/volume."""
    return {d.find("target").get("dev"): f"{d.find('source').get('pool')}/{d.find('source').get('volume')}"
            for d in root.xpath("devices/disk[@type='volume'][source][target]")}


def _copied_disks(moves: dict, move: Move, states: dict[str, HostState]) -> list[str]:
    """The disks (targets) of a moving guest whose data must be copied: their volume is copied to
    the new host, or is there already as another file (an earlier copy)."""
    source, target = states[move.source], states[move.target]
    out = []
    for dev, volume in _disk_volumes(source.get("Guest", move.name).root).items():
        moved = moves.get((move.target, "Volume", volume))
        there, here = target.get("Volume", volume), source.get("Volume", volume)
        if (moved is not None and moved.copy) or (there is not None and here is not None
                                                  and not _same_path(there, here)):
            out.append(dev)
    return out


SWTPM_DIR = "/var/lib/libvirt/swtpm"     # libvirt's default swtpm_storage_dir
NVRAM_DIR = "/var/lib/libvirt/qemu/nvram"      # ... and nvram_dir
_TPM_STATE = {"2.0": "tpm2/tpm2-00.permall", "1.2": "tpm1.2/tpm-00.permall"}


def state_files(root) -> list[str]:
    """The files a guest's identity lives in besides its definition: its UEFI variables (NVRAM:
    the path its definition names, else libvirt's default for firmware it picks at start) and its
    emulated TPM's state (swtpm, in libvirt's default directory)."""
    out = [path.strip() for path in root.xpath("os/nvram/text()") if path.strip()]
    if not out and root.xpath("os[@firmware='efi'] | os/loader[@type='pflash']"):
        out.append(f"{NVRAM_DIR}/{root.findtext('name').strip()}_VARS.fd")
    for backend in root.xpath("devices/tpm/backend[@type='emulator']"):
        out.append(f"{SWTPM_DIR}/{root.findtext('uuid').strip()}/{_TPM_STATE[backend.get('version', '2.0')]}")
    return out


def _moving_user(moves: dict, move: Move, states: dict[str, HostState]) -> str | None:
    """The guest moving to the same host whose move copies this volume's data."""
    for other in moves.values():
        if other.kind == "Guest" and (other.source, other.target) == (move.source, move.target) and \
                move.name in _disk_volumes(states[move.source].get("Guest", other.name).root).values():
            return other.name
    return None


def action(move: Move, item: Item, manifest: Manifest, states: dict[str, HostState],
           ctx: desired_mod.Context, source_instance: str, moves: dict) -> Action:
    """The `move` action on the new host: the object as it is on the old one, then what the
    manifest changes, all on the new host."""
    source, target = states[move.source], states[move.target]
    live = source.get(move.kind, move.name)
    record = ownership.records(source, source_instance).get((move.kind, move.name))
    pool, _, volume = move.name.partition("/")
    if move.kind == "Volume" and move.copy:
        want = desired_mod.build(item, manifest, target, ctx)
        update = planners.volume(want, None, None)                 # made empty, its record written
        user = _moving_user(moves, move, states)
        ops = update.ops + ([] if user else [
            Op(OpName.COPY_VOLUME, {"source": move.source, "pool": pool, "volume": volume})])
        how = (f"the new host does not see its file: it is made in pool {pool} there and its data copied "
               + (f"by the move of guest {user}" if user else "now")
               + "; the old copy stays on the old host, owned there, until pruned")
    elif move.kind == "Volume":
        want = desired_mod.build(item, manifest, target, ctx)
        # compared as the old host sees the file: the new host's pool may have scanned it while it
        # was being made (a qcow2 file seen empty reads as raw) until FIND_VOLUME scans it again
        update = planners.volume(want, live, None)                 # its record written
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
        copied = _copied_disks(moves, move, states)
        volumes = _disk_volumes(live.root)
        streams = [] if running else [     # a shut-off guest's disks, NVRAM and TPM state go first
            Op(OpName.COPY_VOLUME, {"source": move.source, "pool": volumes[dev].split("/")[0],
                                    "volume": volumes[dev].split("/")[1]}) for dev in copied] + [
            Op(OpName.COPY_FILE, {"source": move.source, "path": path}) for path in state_files(live.root)]
        ops = streams + [Op(OpName.MIGRATE, {"source": move.source, "live": running, "address": address,
                                             "copy": copied if running else []})] + later
        kept = " with its NVRAM and TPM state" if state_files(live.root) else ""
        how = ("it runs: live migration" + (f" copying disks {', '.join(copied)}" if copied else "")
               + f", its saved definition{kept} persisted on the new host and removed from the old one" if running
               else "it is shut off: " + (f"disks {', '.join(copied)} copied, " if copied else "")
               + f"its saved definition{kept} defined on the new host and removed from the old one")
    changes = [Change("host", move.source, move.target, "live")] + (update.changes if update else [])
    changes = [c for c in changes if c.path != "owner.hash"]
    return Action(move.target, move.kind, move.name, "move", worst(c.impact for c in changes),
                  f"moves from host {move.source} ({how})", changes, live.values, want.fields, ops, want.deps)
