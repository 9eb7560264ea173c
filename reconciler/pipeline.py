"""The stages in one readable sequence: load -> validate -> observe -> render -> diff -> plan -> apply."""
from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

from . import (desired, drift, edit as edit_mod, gitinfo, history, hostcheck, loader, locking,
               manifest as manifest_mod, moves, ownership, planners, rng)
from .deadline import DEFAULT_TIMEOUT
from .apply import Options, Progress, Result, Silent, apply
from .errors import PlanError, ReconcilerError
from .history import Arrival
from .live import HostState, sort_out_broken
from .manifest import Item, Manifest
from .ownership import Provenance
from .plan import Action, OpName, Plan
from .prune import forget_gone, kept, move_legacy_records, plan_prune


MAX_HOSTS_AT_ONCE = 32      # hosts read (and connected to) at the same time


@dataclass
class Target:
    """A host to connect to: its URI, the instance acting on it, and how long it may take."""

    uri: str
    instance: str = "default"
    timeout: float = DEFAULT_TIMEOUT
    secure: bool = False        # guests state passwords: read them (a read-write connection; still read only)
    bridges: bool = False           # Bridges are declared (a remote host's bridges are read only then)
    network_config: str = "runtime"     # where the host keeps its bridges (Host spec.network_config)


@dataclass
class PlanOptions:
    prune: bool = False           # delete owned objects that left the manifests (also per Host)
    allow_empty: bool = False     # let prune act on a host whose manifests hold no object
    show_unmanaged: bool = False  # list the parts of each declared object no field manages
    delete_tpm_state: bool = False   # pruned guests' TPM state goes too (kept by default)


def load(paths: list[Path]) -> Manifest:
    """Read and validate manifests; raises ManifestError with every problem. No libvirt call."""
    return manifest_mod.build(*loader.load(paths))


@dataclass(frozen=True)
class HostChoice:
    """The Hosts a run covers: one by name (--host), those whose labels match a selector
    (--selector: `key=value`, `key!=value`, `key`, `!key`, joined by commas: all must hold), or all."""

    name: str | None = None
    selector: str | None = None

    @cached_property
    def terms(self) -> list[tuple[str, str, str | None]]:
        """(test, key, value) of each term of the selector; ReconcilerError naming a malformed one."""
        out = []
        for term in (self.selector or "").split(","):
            found = _TERM.fullmatch(term.strip())
            if not found:
                raise ReconcilerError(f"--selector {self.selector!r}: {term.strip()!r} is not a label term "
                                      "(key=value, key!=value, key or !key, joined by commas)")
            neg, key, op, value = found.groups()
            out.append(("!" if neg else op or "", key, value))
        return out

    def matches(self, labels: dict[str, str]) -> bool:
        return all(_TESTS[test](labels, key, value) for test, key, value in self.terms)


_TERM = re.compile(r"(!)?([A-Za-z0-9][A-Za-z0-9_./-]*)(?:(==|=|!=)([A-Za-z0-9_./-]*))?")
_TESTS = {"=": lambda labels, k, v: labels.get(k) == v, "==": lambda labels, k, v: labels.get(k) == v,
          "!=": lambda labels, k, v: labels.get(k) != v, "": lambda labels, k, v: k in labels,
          "!": lambda labels, k, v: k not in labels}


def hosts_of(manifest: Manifest, only: str | HostChoice | None) -> dict[str, str]:
    """The Hosts of the manifests a run covers (name -> URI), in their order."""
    choice = only if isinstance(only, HostChoice) else HostChoice(only)
    if choice.name is not None and choice.name not in manifest.hosts:
        raise ReconcilerError(f"--host {choice.name!r}: no such Host in the manifests ({', '.join(manifest.hosts)})")
    if choice.selector is not None:
        choice.terms            # noqa: B018  (a malformed selector is an error even where no Host is)
    out = {name: doc.spec.uri for name, doc in manifest.hosts.items() if choice.name in (None, name)
           and (choice.selector is None or choice.matches(doc.metadata.labels))}
    if not out and choice.selector is not None:
        raise ReconcilerError(f"--selector {choice.selector!r} matches no Host in the manifests"
                              + (f" (--host {choice.name!r})" if choice.name else ""))
    return out


def targets(manifest: Manifest, hosts: dict[str, str]) -> dict[str, Target]:
    return {name: Target(uri, manifest.hosts[name].spec.instance, manifest.hosts[name].spec.timeout,
                         any(i.ref.kind == "Guest" and i.spec.graphics and i.spec.graphics.password
                             for i in manifest.for_host(name)),
                         any(i.ref.kind == "Bridge" for i in manifest.for_host(name)),
                         manifest.hosts[name].spec.network_config)
            for name, uri in hosts.items()}


def read_host(name: str, target: Target, volume_pools=lambda state: set()) -> HostState:
    """Read one host through a read-only connection, or a read-write one when guests' passwords
    must be compared (libvirt shows them to those only); HostError/AdapterError when it fails."""
    from .adapter import Host
    conn = Host(name, target.uri, readonly=not target.secure, timeout=target.timeout)
    try:
        state = sort_out_broken(conn.observe(volume_pools))
    finally:
        conn.close()
    owned = ownership.records(state, target.instance)   # host bridges: read when declared or owned
    if target.bridges or any(kind == "Bridge" for kind, _ in owned):
        from . import hostbridge     # pyroute2 or ssh: only for hosts with bridges
        hostbridge.observe(state, target.uri, target.network_config, target.instance)
    return state


def observe_host(manifest: Manifest, name: str, uri: str, bridges: bool = False) -> HostState:
    """Read one host of the manifests: every object, the volumes of the pools they use or own,
    and its bridges when Bridges are declared or owned (or `bridges`: adopting one)."""
    declared = {i.spec.pool for i in manifest.for_host(name) if i.ref.kind == "Volume"}
    target = targets(manifest, {name: uri})[name]
    target.bridges = target.bridges or bridges

    def volume_pools(state: HostState) -> set[str]:
        recorded = ownership.records(state, target.instance)
        return declared | {n.split("/")[0] for k, n in recorded if k == "Volume"} | \
            {n for k, n in recorded if k == "StoragePool"}

    return read_host(name, target, lambda state: volume_pools(sort_out_broken(state)))


def observe(manifest: Manifest, hosts: dict[str, str]) -> tuple[dict[str, HostState], dict[str, str]]:
    """Read every host once, all at the same time; a host that cannot be read is reported in the
    second dict (host -> why) and the others are read all the same."""
    def read(name: str) -> HostState | ReconcilerError:
        try:
            return observe_host(manifest, name, hosts[name])
        except ReconcilerError as exc:
            return exc

    with ThreadPoolExecutor(max(1, min(len(hosts), MAX_HOSTS_AT_ONCE)), "observe") as pool:
        read_all = dict(zip(hosts, pool.map(read, hosts)))
    states = {name: got for name, got in read_all.items() if isinstance(got, HostState)}
    errors = {name: str(got) for name, got in read_all.items() if not isinstance(got, HostState)}
    return states, errors


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
              provenance: Provenance = Provenance(), errors: dict[str, str] | None = None,
              arrivals: tuple[list[Arrival], list[str]] = ([], [])) -> Plan:
    """Pure: desired objects against observed hosts -> ordered actions (or PlanError).

    Hosts in `errors` could not be read and objects whose XML libvirt returned malformed cannot be
    planned: the plan carries them as problems and covers everything else. `arrivals` (from
    history.arrivals) are objects coming from hosts this run does not read: not created."""
    plan = Plan(hosts={name: state.uri for name, state in states.items()},
                git={"commit": provenance.commit, "dirty": provenance.dirty})
    problems: list[str] = []
    plan.problems += [a.problem(manifest) for a in arrivals[0]]    # left alone; the rest is planned
    plan.warnings += arrivals[1]
    arriving = {(a.host, a.kind, a.name) for a in arrivals[0]}
    for host, why in (errors or {}).items():
        plan.hosts[host] = manifest.hosts[host].spec.uri
        plan.problems.append(why)
    found, unmovable = moves.find(manifest, states)      # objects whose metadata.host changed
    problems += unmovable
    for host, state in states.items():
        instance = manifest.hosts[host].spec.instance
        plan.instances[host] = instance
        ctx = desired.Context(instance, provenance)
        owned = ownership.records(state, instance)
        items = _readable(plan, manifest.for_host(host), state)
        problems += _conflicts(host, instance, [i for i in items if (host, i.ref.kind, i.ref.name) not in found],
                               state, owned)
        problems += [str(d) for d in hostcheck.problems(items, state, manifest.hosts[host].spec.network_config,
                                                        instance)]
        for item in items:
            if (host, item.ref.kind, item.ref.name) in arriving:
                continue
            move = found.get((host, item.ref.kind, item.ref.name))
            if move is not None:
                plan.actions.append(moves.action(move, item, manifest, states, ctx,
                                                 manifest.hosts[move.source].spec.instance, found))
                continue
            want = desired.build(item, manifest, state, ctx)
            key = (item.ref.kind, item.ref.name)
            live = state.get(*key)
            if options.show_unmanaged and live is not None:
                plan.unmanaged[str(item.ref)] = drift.unmanaged_parts(item.ref.kind, want, live, owned.get(key))
            action = planners.PLANNERS[item.ref.kind](want, live, owned.get(key))
            if action is not None:
                problems += _schema_problems(item, action, live)
                plan.actions.append(action)
            if live is not None:
                live.release()
        declared = {(i.ref.kind, i.ref.name) for i in manifest.for_host(host)}
        # moving away: neither kept nor pruned in this run (a copied volume's old copy is kept, and
        # listed as such, from the next run on)
        declared |= {(m.kind, m.name) for m in found.values() if m.source == host}
        leaving = history.leaving(manifest, host, declared, owned, states)
        declared |= set(leaving)
        plan.kept += [{"address": f"{host}/{kind}/{name}", "reason": f"owned, now declared on host {to!r}, "
                       "which this run does not read; kept (a run that reads both hosts moves it)"}
                      for (kind, name), to in sorted(leaving.items())]
        plan.actions[:0] = move_legacy_records(host, instance, state)
        plan.actions += forget_gone(host, declared, owned, state)
        if options.prune or manifest.hosts[host].spec.prune:
            problems += _prune(plan, host, manifest.for_host(host), owned, state, options, declared)
        else:
            plan.kept += kept(host, declared, owned, state)
        plan.fingerprints |= fingerprints(host, state)
    if problems:
        raise PlanError("the plan cannot be made:\n" + "\n".join(f"  {p}" for p in problems))
    return plan


def _readable(plan: Plan, items: list[Item], state: HostState) -> list[Item]:
    """The declared objects whose live XML could be read; the others become problems of the plan,
    and objects of others with malformed XML become warnings."""
    declared = {(i.ref.kind, i.ref.name) for i in items}
    for (kind, name), why in sorted(state.broken.items()):
        address = f"{state.host}/{kind}/{name}"
        if (kind, name) in declared:
            plan.problems.append(f"{address}: {why}; it is left alone: repair or remove it with virsh, "
                                 "then plan again")
        else:
            plan.warnings.append(f"{address} (not in the manifests): {why}; ignored")
    return [i for i in items if (i.ref.kind, i.ref.name) not in state.broken]


_DEFINES = {"define_domain", "define_network", "define_pool", "create_volume"}


def _schema_problems(item: Item, action: Action, live) -> list[str]:
    """libvirt's RelaxNG schema on every definition the action would write (a new one, or the
    saved one with the action's edits made, escape-hatch edits too): a value the schema refuses
    stops the plan here, naming the manifest, instead of failing at apply."""
    out = []
    for op in action.ops:
        xml = op.args["xml"] if op.name in _DEFINES else None
        if op.name == OpName.EDIT and live is not None and item.ref.kind in ("Guest", "Network"):
            xml = edit_mod.apply(item.ref.kind, live.xml, [edit_mod.Edit.from_json(e) for e in op.args["edits"]],
                                 op.args["marker"])
        if xml is not None:
            for error in rng.errors(item.ref.kind, xml)[:3]:
                out.append(f"{item.source.file}:{item.source.line}: {item.ref}: libvirt's schema refuses "
                           f"the definition: {error}")
    return out


def _prune(plan: Plan, host: str, items, owned, state: HostState, options: PlanOptions,
           declared: set[tuple[str, str]]) -> list[str]:
    """Delete what this host owns and `declared` (its objects, and those moving away) leaves out."""
    if not items and owned and not options.allow_empty:
        return [f"host {host!r}: the manifests hold no object for it but it has {len(owned)} owned "
                "objects; refusing to prune them all (use --allow-empty if that is meant)"]
    actions, problems = plan_prune(host, declared, owned, state, options.delete_tpm_state)
    plan.actions += actions
    return problems


_PASSWD = re.compile(r"""\spasswd=(['"]).*?\1""")      # never hashed into a saved plan (nor read read-only)
_PERSISTED = re.compile(r"<persisted [^>]*/>")        # a Bridge's files: read only with the manifests


def fingerprints(host: str, state: HostState) -> dict[str, str]:
    """A hash per object read: saved definition, run state, autostart and, for a running guest,
    the owner marker it runs with (not its whole live XML: the balloon moves that)."""
    out = {}
    for (kind, name), obj in state.objects.items():
        live_marker = ownership.read_marker(obj.live_root)
        blob = "\0".join([_PERSISTED.sub("", _PASSWD.sub("", obj.xml)), str(obj.active), str(obj.autostart), live_marker.hash if live_marker else ""])
        out[f"{host}/{kind}/{name}"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def stale_objects(plan: Plan, states: dict[str, HostState]) -> list[str]:
    """Objects a saved plan touches whose live state changed since it was made (or appeared)."""
    now = {}
    for host, state in states.items():
        now |= fingerprints(host, state)
    addresses = [a.address for a in plan.actions] + list(plan.sources())
    return sorted(address for address in addresses if plan.fingerprints.get(address) != now.get(address))


def plan(paths: list[Path], only_host: str | HostChoice | None = None, options: PlanOptions = PlanOptions(),
         hosts: set[str] | None = None, manifest: Manifest | None = None) -> Plan:
    """Load (unless `manifest` is the one loaded from `paths`), observe and plan; `hosts` narrows
    the run to those hosts (the ones apply holds)."""
    manifest = manifest or load(paths)
    wanted = {h: u for h, u in hosts_of(manifest, only_host).items() if hosts is None or h in hosts}
    states, errors = observe(manifest, wanted)
    return make_plan(manifest, states, options, gitinfo.provenance(paths), errors,
                     history.arrivals(paths, manifest, states))


@contextmanager
def locked(hosts: dict[str, Target], operation: str, timeout: float,
           say: Callable[[str], None] = lambda msg: None, commit: str = "",
           failed: dict[str, str] | None = None) -> Iterator[dict]:
    """Read-write connections to `hosts` (opened at the same time), each holding its host lock. A
    host that cannot be connected or locked is put in `failed` (host -> why) when a dict is given,
    and the others are held all the same; without one, a failure is raised."""
    from .adapter import Host
    conns, held = {}, []

    def connect(name: str) -> tuple:
        """(connection, its held lock or None, why not) for one host."""
        target = hosts[name]
        try:
            conn = Host(name, target.uri, readonly=False, timeout=target.timeout)
        except ReconcilerError as exc:
            return None, None, exc
        lock = locking.Lock(target.instance, operation, commit=commit)
        try:
            locking.acquire(conn, lock, timeout, say=say)
        except ReconcilerError as exc:
            return conn, None, exc
        return conn, lock, None

    try:
        with ThreadPoolExecutor(max(1, min(len(hosts), MAX_HOSTS_AT_ONCE)), "connect") as pool:
            connected = list(zip(hosts, pool.map(connect, hosts)))
        for name, (conn, lock, why) in connected:     # every connection is kept, to be closed
            if conn is not None:
                conns[name] = conn
            if lock is not None:
                held.append((conn, lock))
        for name, (conn, lock, why) in connected:
            if why is not None:
                if failed is None:
                    raise why
                failed[name] = str(why)
        yield {name: conn for name, conn in conns.items() if name not in (failed or {})}
    finally:
        for conn, lock in held:
            try:
                locking.release(conn, lock)
            except ReconcilerError as exc:
                say(f"host {conn.name!r}: the lock could not be released ({exc}); "
                    f"'virt-reconcile unlock {lock.id}' removes it")
        for conn in conns.values():
            conn.close()


def execute(plan: Plan, conns: dict, options: Options, progress: Progress = Silent()) -> list[Result]:
    """Apply a plan through the (locked) read-write connections of its hosts."""
    return apply(plan, conns, options, progress)


def check_saved(plan: Plan) -> None:
    """Refuse a saved plan made by another tool version, or when an object it touches changed
    since it was made."""
    from . import __version__
    if plan.tool_version != __version__:
        raise PlanError(f"the saved plan was made by virt-reconcile {plan.tool_version}, this is {__version__}: "
                        "plan again")
    states = {}
    for host in plan.touched_hosts():
        listed = {key.split("/")[2] for key in plan.fingerprints if key.startswith(f"{host}/Volume/")}
        states[host] = read_host(host, Target(plan.hosts[host]), lambda state, listed=listed: listed)
    changed = stale_objects(plan, states)
    if changed:
        raise PlanError("the saved plan is stale: these objects changed since it was made (plan again):\n"
                        + "\n".join(f"  {a}" for a in changed))
