"""Ownership commands: status (inventory), adopt, forget, unlock."""
from __future__ import annotations

from pathlib import Path

from . import adopt as adopt_mod, desired, diff, fields, gitinfo, inventory, loader, locking, ownership, pipeline, steps
from .errors import ReconcilerError
from .kinds import KINDS, has_marker
from .manifest import Manifest, Ref, build


def status(paths: list[Path], only_host: str | pipeline.HostChoice | None = None,
           show_unmanaged: bool = False) -> tuple[dict[str, list[inventory.Entry]], dict[str, str]]:
    """Per host: managed objects with their commit, missing, unmanaged and broken ones
    (read-only), with the parts of managed objects no field manages when asked; and the hosts
    that could not be read, with why."""
    manifest = pipeline.load(paths)
    states, errors = pipeline.observe(manifest, pipeline.hosts_of(manifest, only_host))
    out = {}
    for host, state in states.items():
        out[host] = inventory.host_inventory(state, manifest.hosts[host].spec.instance)
        records = ownership.records(state, manifest.hosts[host].spec.instance)
        for entry in out[host]:
            live = state.get(entry.kind, entry.name)
            if show_unmanaged and entry.status == "managed" and live is not None:
                rec = records.get((entry.kind, entry.name))
                entry.unmanaged = fields.unmanaged_items(entry.kind, live.values,
                                                         rec.fields if rec else {}) + fields.unmanaged(entry.kind, live.root)
    return out, errors


def _host(manifest: Manifest, host: str | None) -> str:
    if host is None:
        if len(manifest.hosts) != 1:
            raise ReconcilerError("name the host with --host (several Hosts are declared)")
        return next(iter(manifest.hosts))
    pipeline.hosts_of(manifest, host)
    return host


def _target(kind_name: str) -> tuple[str, str]:
    kind, _, name = kind_name.partition("/")
    if kind not in KINDS or not name:
        raise ReconcilerError(f"{kind_name!r}: give KIND/NAME, e.g. Guest/web-1 or Volume/pool/disk.qcow2")
    return kind, name


def adopt(paths: list[Path], kind_name: str, host: str | None, out: Path | None, lock_timeout: float,
          say=print) -> tuple[Path, list[str]]:
    """Write a manifest for an unmanaged object from its live definition, then mark it owned.
    Returns the file written and the parts of the definition no field manages (kept as they are):
    those the manifest cannot hold or that would not round-trip, and those no field declares."""
    kind, name = _target(kind_name)
    manifest = pipeline.load(paths)
    host = _host(manifest, host)
    instance = manifest.hosts[host].spec.instance
    if out is None:
        base = paths[0] if paths[0].is_dir() else paths[0].parent
        out = base / f"{kind.lower()}-{name.replace('/', '-')}.yaml"
    if out.exists():
        raise ReconcilerError(f"{out} exists: give another --out")
    uri = manifest.hosts[host].spec.uri
    with pipeline.locked(pipeline.targets(manifest, {host: uri}), f"adopt {kind}/{name}", lock_timeout, say) as conns:
        state = pipeline.observe_host(manifest, host, uri, bridges=kind == "Bridge")
        if (kind, name) in state.broken:
            raise ReconcilerError(f"{host}/{kind}/{name}: {state.broken[(kind, name)]}; not adopted")
        live = state.get(kind, name)
        if live is None:
            raise ReconcilerError(f"{host}/{kind}/{name} is not on the host")
        if (kind, name) in ownership.records(state, instance):
            raise ReconcilerError(f"{host}/{kind}/{name} is already managed by instance {instance!r}")
        marker = live.marker if has_marker(kind) else None
        if marker and marker.instance != instance:
            raise ReconcilerError(f"{host}/{kind}/{name} belongs to instance {marker.instance!r}; not adopted")
        left_out: list[str] = []
        doc = adopt_mod.document(kind, name, host, live.xml, live.active, live.autostart, left_out)
        ctx = desired.Context(instance, gitinfo.provenance(paths))
        have = live.values
        built: dict = {}
        loaded = loader.load(paths)

        def still_changed(doc: dict) -> list:
            built["text"] = adopt_mod.yaml_text(doc)
            full = _validated(loaded, out, built["text"])
            built["want"] = want = desired.build(full.items[Ref(host, kind, name)], full, state, ctx)
            return [fields.manifest_location(kind, c.parts, want.index) for c in diff.diff(want.fields, have)]

        adopt_mod.converge(kind, name, doc, still_changed, left_out)
        text, want = built["text"], built["want"]
        _mark(conns[host], kind, name, want)
        out.write_text(f"# adopted from {host} ({uri}) by virt-reconcile\n" + text, encoding="utf-8")
    return out, [f"{part} (left out of the manifest)" for part in left_out] + fields.unmanaged(kind, live.root)


def _validated(loaded: tuple, out: Path, text: str) -> Manifest:
    """The manifests (`loaded`: loader.load's documents and problems) with the adopted document,
    validated as if it were already written to `out`."""
    docs, problems = loaded
    try:
        return build(docs + loader.parse_text(str(out), text), problems)
    except ReconcilerError as exc:
        raise ReconcilerError(f"the adopted manifest would not validate with the others (adopt what it "
                              f"refers to first):\n{exc}") from None


def _mark(conn, kind: str, name: str, want) -> None:
    if has_marker(kind):
        steps.adopt_owner(conn, kind, name, ownership.stamp_marker(want.marker))
    else:
        record = {"kind": kind, "name": name, "uuid": want.uuid} | want.owner
        steps.record(conn, kind, name, want.owner["instance"], record)


def forget(paths: list[Path], kind_name: str, host: str | None, lock_timeout: float, say=print) -> None:
    """Stop managing an object: remove its ownership record, keep the object."""
    kind, name = _target(kind_name)
    manifest = pipeline.load(paths)
    host = _host(manifest, host)
    instance, uri = manifest.hosts[host].spec.instance, manifest.hosts[host].spec.uri
    with pipeline.locked(pipeline.targets(manifest, {host: uri}), f"forget {kind}/{name}", lock_timeout, say) as conns:
        state = pipeline.observe_host(manifest, host, uri)
        if (kind, name) not in ownership.records(state, instance):
            raise ReconcilerError(f"{host}/{kind}/{name} is not managed by instance {instance!r}")
        if has_marker(kind):
            steps.drop_owner(conns[host], kind, name)
        else:
            steps.forget(conns[host], kind, name, instance)


def unlock(paths: list[Path], lock_id: str, host: str | None) -> None:
    """Break a host lock, only when `lock_id` names the lock that is held."""
    from .adapter import Host
    manifest = pipeline.load(paths)
    host = _host(manifest, host)
    spec = manifest.hosts[host].spec
    instance = spec.instance
    conn = Host(host, spec.uri, readonly=False, timeout=spec.timeout)
    try:
        if not locking.unlock(conn, locking.lock_name(instance), lock_id):
            held = locking.parse(locking.read_lock(conn, locking.lock_name(instance)) or "")
            now = f"the held lock is {held.id}" if held else "no lock is held"
            raise locking.LockError(f"host {host!r}: lock {lock_id} is not held ({now})")
    finally:
        conn.close()
