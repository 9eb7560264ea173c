"""The stages in one readable sequence: load -> validate -> observe -> render -> diff -> plan -> apply."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import desired, gitinfo, loader, manifest as manifest_mod, ownership, planners
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
    """A hash per object read: saved definition, running definition, run state, autostart."""
    import hashlib
    out = {}
    for (kind, name), obj in state.objects.items():
        blob = "\0".join([obj.xml, obj.live_xml or "", str(obj.active), str(obj.autostart)])
        out[f"{host}/{kind}/{name}"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def plan(paths: list[Path], only_host: str | None = None, options: PlanOptions = PlanOptions()) -> Plan:
    manifest = load(paths)
    return make_plan(manifest, observe(manifest, hosts_of(manifest, only_host)), options,
                     gitinfo.provenance(paths))


def execute(plan: Plan, options: Options,
            progress: Callable[[Action, Result], None] = lambda a, r: None) -> list[Result]:
    """Apply a plan through read-write connections to the hosts it names."""
    from .adapter import Host
    needed = {a.host for a in plan.actions}
    conns = {name: Host(name, uri, readonly=False) for name, uri in plan.hosts.items() if name in needed}
    try:
        return apply(plan, conns, options, progress)
    finally:
        for conn in conns.values():
            conn.close()
