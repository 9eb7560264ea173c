"""Execute a plan: hosts at once, independent actions of a host at once (up to a limit), each
action's ops in order; dependents of a failed action are skipped."""
from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Protocol

from datetime import datetime, timezone

from . import edit, ownership
from .errors import AdapterError
from .models import LOCAL_POOLS
from .plan import PEER_OPS, Action, OpName, Plan

if TYPE_CHECKING:               # steps (and what it imports) loads with the first action run
    from .steps import HostPort


@dataclass
class Result:
    """Outcome of one action: done, failed (with libvirt's message), skipped (with why)."""

    address: str
    status: str
    message: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Options:
    restart: bool = False          # run pending guest restarts
    allow_destroy: bool = False    # run destructive actions
    shutdown_timeout: int = 120    # seconds a guest gets to shut down on ACPI
    force_stop: bool = False       # power a guest off when it ignores the shutdown request
    allow_disruptive: bool = False  # move the connection to a host (a bridge taking its interface)
    rollback_timeout: int = 60      # seconds a host may take to answer again after that, or it is rolled back
    parallelism: int = 10           # actions run at once on one host (independent ones only)


def _blocked(action: Action, options: Options) -> str | None:
    # prune deletes are guarded by --prune and the object's own 'protect: false' instead
    if action.impact == "destructive" and action.action != "delete" and not options.allow_destroy:
        return "destructive: re-run with --allow-destroy to do it"
    guarded = any(op.name is OpName.BRIDGE_APPLY and op.args.get("guard") for op in action.ops)
    if guarded and not options.allow_disruptive:
        return "it moves the connection to the host: re-run with --allow-disruptive to do it (with a rollback)"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Progress(Protocol):
    """Who hears of each action as it runs (console.Progress and its kinds)."""

    def start(self, action: Action) -> None: ...
    def note(self, action: Action, text: str) -> None: ...
    def end(self, action: Action, result: Result, seconds: float) -> None: ...


class Silent:
    def start(self, action: Action) -> None:
        pass

    def note(self, action: Action, text: str) -> None:
        pass

    def end(self, action: Action, result: Result, seconds: float) -> None:
        pass


def run_action(action: Action, host: HostPort, options: Options, instance: str = "default",
               progress: Progress = Silent(), peers: dict[str, HostPort] | None = None) -> Result:
    """Run one action's ops; a restart op runs only with options.restart. `peers`: the run's other
    hosts, for ops that name one (a guest moving from it)."""
    notes = []
    for op in action.ops:
        args = dict(op.args)
        if op.name in PEER_OPS:
            if args["source"] not in (peers or {}):
                raise AdapterError("move", action.address, f"host {args['source']!r} is not connected in this run")
            args["source"] = peers[args["source"]]
        if op.name in (OpName.DEFINE_DOMAIN, OpName.DEFINE_NETWORK):
            args["xml"] = ownership.stamp(args["xml"], _now())
        if op.name is OpName.SET_LIVE_OWNER:
            args["xml"] = ownership.stamp_marker(args["xml"])
        if op.name is OpName.RECORD and not args["record"].get("applied"):   # a moved record keeps its time
            args["record"] = dict(args["record"], applied=_now())
        if op.name is OpName.FORGET:
            args["instance"] = instance
        if op.name is OpName.RESTART and not options.restart:
            notes.append("restart pending: the running guest keeps its old definition (apply --restart)")
            continue
        if op.name in (OpName.SHUTDOWN, OpName.RESTART):
            args |= {"timeout": options.shutdown_timeout, "force": options.force_stop}
            then = "powered off" if options.force_stop else "the action fails"
            progress.note(action, f"asking the guest to shut down; waiting up to {options.shutdown_timeout} s "
                                  f"(then {then})")
        if op.name is OpName.CREATE_VOLUME and args.get("image"):   # download and upload progress
            args["note"] = lambda text, action=action: progress.note(action, text)
        if op.name is OpName.BRIDGE_APPLY and args.get("guard"):
            args["guard"] = dict(args["guard"], timeout=options.rollback_timeout)
            progress.note(action, f"it moves the connection to the host: rolled back unless the host answers "
                                  f"within {options.rollback_timeout} s")
        if op.name is OpName.EDIT:        # the saved definition, read now, with exactly the planned changes
            args = {"marker": ownership.stamp_marker(args["marker"]) if args["marker"] else None,
                    "edits": [edit.Edit.from_json(e) for e in args["edits"]]}
        from . import steps
        steps.run(host, action.kind, action.name, op.name, args)
    return Result(action.address, "done", notes=notes)


# Kinds made in one group: networks start (one at a time, each a dnsmasq) while pools and volumes
# are made, as nothing of one needs the other; a pool reached over the network waits for them.
_TOGETHER = {"Network": "networks and storage", "StoragePool": "networks and storage",
             "Volume": "networks and storage"}


def groups(actions: list[Action]) -> list[list[int]]:
    """One host's actions (plan order) in groups that run one after the other: a run of actions
    of one kind (the plan orders kinds: secrets, bridges, networks, pools, volumes, guests, then
    deletions), networks, pools and volumes made in one."""
    def group_of(action: Action) -> tuple[str, bool]:
        deleting = action.action == "delete"
        return (action.kind if deleting else _TOGETHER.get(action.kind, action.kind)), deleting

    out: list[list[int]] = []
    for i, action in enumerate(actions):
        if not out or group_of(action) != group_of(actions[i - 1]):
            out.append([])
        out[-1].append(i)
    return out


# Kinds changed one at a time: host bridges (each change is checked against the host's links),
# networks (libvirt picks a free virbrN for each at define time, and two at once pick the same).
ONE_AT_A_TIME = ("Bridge", "Network")


def waits_for(actions: list[Action], group: list[int]) -> dict[int, set[int]]:
    """Within a group, the earlier actions each must wait for: those it depends on (a volume
    after its pool, one cloned from another), earlier actions on the same object, for kinds changed
    one at a time everything before it, and for a pool reached over the network (NFS, iSCSI, Ceph)
    every network before it."""
    out: dict[int, set[int]] = {}
    seen: dict[str, int] = {}
    for n, i in enumerate(group):
        action = actions[i]
        wait = {seen[d] for d in action.deps if d in seen}
        if action.address in seen:
            wait.add(seen[action.address])
        if action.kind in ONE_AT_A_TIME:
            wait.update(group[:n])
        if action.kind == "StoragePool" and _pool_type(action) not in LOCAL_POOLS:
            wait.update(j for j in group[:n] if actions[j].kind == "Network")
        out[i] = wait
        seen[action.address] = i
    return out


def _pool_type(action: Action) -> str:
    """A pool action's type, as planned (dir when the plan does not say)."""
    return str((action.after or action.before or {}).get("type") or "dir")


class _Serialised:
    """A Progress several threads may call at once (one line at a time)."""

    def __init__(self, progress: Progress):
        self.progress, self.lock = progress, threading.Lock()

    def start(self, action: Action) -> None:
        with self.lock:
            self.progress.start(action)

    def note(self, action: Action, text: str) -> None:
        with self.lock:
            self.progress.note(action, text)

    def end(self, action: Action, result: Result, seconds: float) -> None:
        with self.lock:
            self.progress.end(action, result, seconds)


def _run_host(actions: list[Action], host: HostPort, options: Options, instance: str,
              progress: Progress, peers: dict[str, HostPort]) -> list[Result]:
    """One host's actions, group after group; within a group up to options.parallelism at once,
    each when what it waits for has ended. An action whose dependency did not succeed is skipped."""
    results: list[Result | None] = [None] * len(actions)
    not_done: set[str] = set()
    limit = max(1, options.parallelism)

    def run(i: int) -> tuple[Result, float]:
        started = time.monotonic()
        try:
            result = run_action(actions[i], host, options, instance, progress, peers)
        except AdapterError as exc:
            result = Result(actions[i].address, "failed", str(exc))
        return result, time.monotonic() - started

    def finish(i: int, result: Result, seconds: float) -> None:
        results[i] = result
        if result.status != "done":
            not_done.add(actions[i].address)
        progress.end(actions[i], result, seconds)

    with ThreadPoolExecutor(limit, "apply") as pool:
        for group in groups(actions):
            waits, waiting, running = waits_for(actions, group), list(group), {}
            while waiting or running:
                for i in list(waiting):
                    if len(running) >= limit:
                        break
                    if any(results[j] is None for j in waits[i]):
                        continue
                    waiting.remove(i)
                    action = actions[i]
                    failed_dep = next((d for d in action.deps if d in not_done), None)
                    blocked = _blocked(action, options)
                    if failed_dep or blocked:
                        finish(i, Result(action.address, "skipped",
                                         f"because {failed_dep} did not succeed" if failed_dep else blocked), 0.0)
                        continue
                    progress.start(action)
                    running[pool.submit(run, i)] = i
                if running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        finish(running.pop(future), *future.result())
    return [r for r in results if r is not None]


def apply(plan: Plan, hosts: dict[str, HostPort], options: Options, progress: Progress = Silent()) -> list[Result]:
    """Run the plan: hosts at the same time, each host's actions as _run_host does; results in
    plan order, `progress` told when each action starts and ends."""
    progress = _Serialised(progress)
    by_host: dict[str, list[Action]] = {}
    for action in plan.actions:
        by_host.setdefault(action.host, []).append(action)
    with ThreadPoolExecutor(max(1, len(by_host)), "host") as pool:
        futures = {name: pool.submit(_run_host, actions, hosts[name], options,
                                     plan.instances.get(name, "default"), progress, hosts)
                   for name, actions in by_host.items()}
        done = {name: iter(future.result()) for name, future in futures.items()}
    return [next(done[action.host]) for action in plan.actions]
