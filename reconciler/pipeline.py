"""The stages in one readable sequence: load -> validate -> observe -> render -> diff -> plan -> apply."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import desired, loader, manifest as manifest_mod, planners
from .apply import Options, Result, apply
from .errors import ReconcilerError
from .live import HostState
from .manifest import Manifest
from .plan import Action, Plan


def load(paths: list[Path]) -> Manifest:
    """Read and validate manifests; raises ManifestError with every problem. No libvirt call."""
    return manifest_mod.build(*loader.load(paths))


def _hosts(manifest: Manifest, only: str | None) -> dict[str, str]:
    if only is not None and only not in manifest.hosts:
        raise ReconcilerError(f"--host {only!r}: no such Host in the manifests ({', '.join(manifest.hosts)})")
    return {name: doc.spec.uri for name, doc in manifest.hosts.items() if only in (None, name)}


def observe(manifest: Manifest, hosts: dict[str, str]) -> dict[str, HostState]:
    """Read every host once through a read-only connection."""
    from .adapter import Host
    states = {}
    for name, uri in hosts.items():
        pools = {i.spec.pool for i in manifest.for_host(name) if i.ref.kind == "Volume"}
        conn = Host(name, uri, readonly=True)
        try:
            states[name] = conn.observe(pools)
        finally:
            conn.close()
    return states


def make_plan(manifest: Manifest, states: dict[str, HostState]) -> Plan:
    """Pure: desired objects against observed hosts -> ordered actions."""
    plan = Plan(hosts={name: state.uri for name, state in states.items()})
    for host, state in states.items():
        for item in manifest.for_host(host):
            want = desired.build(item, manifest, state)
            action = planners.PLANNERS[item.ref.kind](want, state.get(item.ref.kind, item.ref.name))
            if action is not None:
                plan.actions.append(action)
    return plan


def plan(paths: list[Path], only_host: str | None = None) -> Plan:
    manifest = load(paths)
    return make_plan(manifest, observe(manifest, _hosts(manifest, only_host)))


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
