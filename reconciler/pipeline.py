"""The stages in one readable sequence: load -> validate -> observe -> render -> diff -> plan -> apply."""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import desired, gitinfo, loader, locking, manifest as manifest_mod, ownership, planners
from .apply import Options, Result, apply
from .errors import PlanError, ReconcilerError
from .live import HostState
from .manifest import Manifest
from .ownership import Provenance
from .plan import Action, Plan
from .prune import plan_prune


@dataclass
class PlanOptions:
    prune: bool = False           # delete owned objects that left the manifests (also per Host)
    allow_empty: bool = False     # let prune act on a host whose manifests hold no object


def load(paths: list[Path]) -> Manifest:
    """Read and validate manifests; raises ManifestError with every problem. No libvirt call."""
    return manifest_mod.build(*loader.load(paths))


def hosts_of(manifest: Manifest, only: str | None) -> dict[str, str]:
    if only is not None and only not in manifest.hosts:
        raise ReconcilerError(f"--host {only!r}: no such Host in the manifests ({', '.join(manifest.hosts)})")
    return {name: doc.spec.uri for name, doc in manifest.hosts.items() if only in (None, name)}


def observe(manifest: Manifest, hosts: dict[str, str]) -> dict[str, HostState]:
    """Read every host once through a read-only connection."""
    from .adapter import Host
    states = {}
    for name, uri in hosts.items():
        declared = {i.spec.pool for i in manifest.for_host(name) if i.ref.kind == "Volume"}
        instance = manifest.hosts[name].spec.instance

        def volume_pools(state: HostState, declared=declared, instance=instance) -> set[str]:
            recorded = ownership.records(state, instance)
            return declared | {n.split("/")[0] for k, n in recorded if k == "Volume"} | \
                {n for k, n in recorded if k == "StoragePool"}

        conn = Host(name, uri, readonly=True)
        try:
            states[name] = conn.observe(volume_pools)
        finally:
            conn.close()
    return states


def _conflicts(host: str, instance: str, items, state: HostState, owned) -> list[str]:
    """Declared objects that exist on the host without being ours: never touched."""
    out = []
    for item in items:
        key = (item.ref.kind, item.ref.name)
        if state.get(*key) is not None and key not in owned:
            out.append(f"{item.ref} exists on the host but is not managed by instance {instance!r}: "
                       f"adopt it first (virt-reconcile adopt {item.ref.kind}/{item.ref.name} "
                       f"--host {host} PATH) or rename it")
    return out


def make_plan(manifest: Manifest, states: dict[str, HostState], options: PlanOptions = PlanOptions(),
              provenance: Provenance = Provenance()) -> Plan:
    """Pure: desired objects against observed hosts -> ordered actions (or PlanError)."""
    plan = Plan(hosts={name: state.uri for name, state in states.items()},
                git={"commit": provenance.commit, "dirty": provenance.dirty})
    problems: list[str] = []
    for host, state in states.items():
        instance = manifest.hosts[host].spec.instance
        plan.instances[host] = instance
        ctx = desired.Context(instance, provenance)
        owned = ownership.records(state, instance)
        items = manifest.for_host(host)
        problems += _conflicts(host, instance, items, state, owned)
        for item in items:
            want = desired.build(item, manifest, state, ctx)
            key = (item.ref.kind, item.ref.name)
            action = planners.PLANNERS[item.ref.kind](want, state.get(*key), owned.get(key))
            if action is not None:
                plan.actions.append(action)
        if options.prune or manifest.hosts[host].spec.prune:
            problems += _prune(plan, host, items, owned, state, options)
        plan.fingerprints |= fingerprints(host, state)
    if problems:
        raise PlanError("the plan cannot be made:\n" + "\n".join(f"  {p}" for p in problems))
    return plan


def _prune(plan: Plan, host: str, items, owned, state: HostState, options: PlanOptions) -> list[str]:
    if not items and owned and not options.allow_empty:
        return [f"host {host!r}: the manifests hold no object for it but it has {len(owned)} owned "
                "objects; refusing to prune them all (use --allow-empty if that is meant)"]
    declared = {(i.ref.kind, i.ref.name) for i in items}
    actions, problems = plan_prune(host, declared, owned, state)
    plan.actions += actions
    return problems


def fingerprints(host: str, state: HostState) -> dict[str, str]:
    """A hash per object read: saved definition, run state, autostart and, for a running guest,
    the owner marker it runs with (not its whole live XML: the balloon moves that)."""
    out = {}
    for (kind, name), obj in state.objects.items():
        live_marker = ownership.read_marker(obj.live_xml) if obj.live_xml else None
        blob = "\0".join([obj.xml, str(obj.active), str(obj.autostart), live_marker.hash if live_marker else ""])
        out[f"{host}/{kind}/{name}"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def stale_objects(plan: Plan, states: dict[str, HostState]) -> list[str]:
    """Objects a saved plan touches whose live state changed since it was made (or appeared)."""
    now = {}
    for host, state in states.items():
        now |= fingerprints(host, state)
    return sorted(a.address for a in plan.actions if plan.fingerprints.get(a.address) != now.get(a.address))


def plan(paths: list[Path], only_host: str | None = None, options: PlanOptions = PlanOptions()) -> Plan:
    manifest = load(paths)
    return make_plan(manifest, observe(manifest, hosts_of(manifest, only_host)), options,
                     gitinfo.provenance(paths))


@contextmanager
def locked(hosts: dict[str, tuple[str, str]], operation: str, timeout: float,
           say: Callable[[str], None] = lambda msg: None, commit: str = "") -> Iterator[dict]:
    """Read-write connections to `hosts` ({name: (uri, instance)}), each holding its host lock."""
    from .adapter import Host
    conns, held = {}, []
    try:
        for name, (uri, instance) in hosts.items():
            conns[name] = Host(name, uri, readonly=False)
            lock = locking.Lock(instance, operation, commit=commit)
            locking.acquire(conns[name], lock, timeout, say=say)
            held.append((conns[name], lock))
        yield conns
    finally:
        for conn, lock in held:
            locking.release(conn, lock)
        for conn in conns.values():
            conn.close()


def execute(plan: Plan, conns: dict, options: Options,
            progress: Callable[[Action, Result], None] = lambda a, r: None) -> list[Result]:
    """Apply a plan through the (locked) read-write connections of its hosts."""
    return apply(plan, conns, options, progress)


def check_saved(plan: Plan) -> None:
    """Refuse a saved plan made by another tool version, or when an object it touches changed
    since it was made."""
    from . import __version__
    if plan.tool_version != __version__:
        raise PlanError(f"the saved plan was made by virt-reconcile {plan.tool_version}, this is {__version__}: "
                        "plan again")
    from .adapter import Host
    states = {}
    for host, uri in plan.hosts.items():
        listed = {key.split("/")[2] for key in plan.fingerprints if key.startswith(f"{host}/Volume/")}
        conn = Host(host, uri, readonly=True)
        try:
            states[host] = conn.observe(lambda state, listed=listed: listed)
        finally:
            conn.close()
    changed = stale_objects(plan, states)
    if changed:
        raise PlanError("the saved plan is stale: these objects changed since it was made (plan again):\n"
                        + "\n".join(f"  {a}" for a in changed))
