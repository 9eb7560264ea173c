"""Execute a plan: each action's ops in order; dependents of a failed action are skipped."""
from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Protocol

from datetime import datetime, timezone

from . import edit, ownership, steps
from .errors import AdapterError
from .plan import Action, OpName, Plan
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
               progress: Progress = Silent()) -> Result:
    """Run one action's ops; a restart op runs only with options.restart."""
    notes = []
    for op in action.ops:
        args = dict(op.args)
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
        steps.run(host, action.kind, action.name, op.name, args)
    return Result(action.address, "done", notes=notes)


def apply(plan: Plan, hosts: dict[str, HostPort], options: Options, progress: Progress = Silent()) -> list[Result]:
    """Run every action in plan order, telling `progress` when each starts and ends."""
    results: list[Result] = []
    not_done: set[str] = set()
    for action in plan.actions:
        failed_dep = next((d for d in action.deps if d in not_done), None)
        blocked = _blocked(action, options)
        started = time.monotonic()
        if failed_dep or blocked:
            result = Result(action.address, "skipped", f"because {failed_dep} did not succeed" if failed_dep else blocked)
        else:
            progress.start(action)
            try:
                result = run_action(action, hosts[action.host], options,
                                    plan.instances.get(action.host, "default"), progress)
            except AdapterError as exc:
                result = Result(action.address, "failed", str(exc))
        if result.status != "done":
            not_done.add(action.address)
        results.append(result)
        progress.end(action, result, time.monotonic() - started)
    return results
