"""The only place that formats output: plans and apply results as text (terraform-style) or JSON."""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from .apply import Result
from .console import colour as use_colour
from .drift import CLASSES
from .secretref import is_sensitive
from .plan import FORMAT_VERSION, IMPACTS, SYMBOLS, Action, Plan
from .units import human_size

_COLOURS = {"+": "32", "~": "33", "-/+": "31", ">": "36", "#": "35", "@": "35", "destructive": "31",
            "failed": "31", "done": "32", "skipped": "33"}
_SIZE_FIELDS = ("memory.max", "memory.current", "capacity")


def _paint(text: str, key: str, colour: bool) -> str:
    code = _COLOURS.get(key)
    return f"\033[{code}m{text}\033[0m" if colour and code else text


def value(path: str, val: Any) -> str:
    if val is None:
        return "(none)"
    if is_sensitive(val):
        return "(sensitive)"
    if isinstance(val, int) and not isinstance(val, bool) and path.endswith(_SIZE_FIELDS):
        return human_size(val)
    if isinstance(val, dict):
        return "{" + ", ".join(f"{k}: {value(k, v)}" for k, v in val.items()) + "}"
    return json.dumps(val) if isinstance(val, (str, list, bool)) else str(val)


def moved(path: str, before: Any, after: Any) -> str:
    """A changed value as `before -> after` (a password: that it changed, never a value)."""
    if is_sensitive(before) or is_sensitive(after):
        return "(sensitive value changed)"
    return f"{value(path, before)} -> {value(path, after)}"


def action_text(action: Action, colour: bool) -> list[str]:
    sym = SYMBOLS[action.action]
    head = f"  {_paint(sym, sym, colour)} {action.address}  ({action.action}, impact: " \
           f"{_paint(action.impact, action.impact, colour)})"
    lines = [head, f"      # {action.reason}"]
    for ch in action.changes:
        tag = f"  [{ch.impact}]" if action.action != "create" else ""
        if action.action == "create":
            if ch.after == "":
                continue
            lines.append(f"      + {ch.path} = {value(ch.path, ch.after)}")
        elif ch.before is None:
            lines.append(f"      + {ch.path} = {value(ch.path, ch.after)}{tag}")
        elif ch.after is None:
            lines.append(f"      - {ch.path} = {value(ch.path, ch.before)}{tag}")
        else:
            lines.append(f"      ~ {ch.path}: {moved(ch.path, ch.before, ch.after)}{tag}")
    return lines


def summary_parts(plan: Plan) -> tuple[str, str]:
    s = plan.summary()
    acts = ", ".join(f"{n} to {a}" for a, n in s["actions"].items())
    imps = ", ".join(f"{s['impacts'][i]} {i}" for i in IMPACTS)
    return acts, imps


def summary_line(plan: Plan) -> str:
    acts, imps = summary_parts(plan)
    return f"Plan: {acts}.\nImpact: {imps}."


def revision(plan: Plan) -> str:
    commit = plan.git.get("commit") or ""
    if not commit:
        return "manifests not in git"
    return f"manifests at {commit[:12]}" + (" + uncommitted changes" if plan.git.get("dirty") else "")


def plan_text(plan: Plan, stream: TextIO = sys.stdout) -> None:
    colour = use_colour(stream)
    hosts = ", ".join(f"{h} ({u})" for h, u in plan.hosts.items())
    print(f"virt-reconcile plan for {hosts}; {revision(plan)}", file=stream)
    if plan.empty:
        print("\nNo changes" + (" for what could be read." if plan.problems
                                 else " to apply." if plan.kept else ". The hosts match the manifests."), file=stream)
        _kept_text(plan, stream)
        return
    print("", file=stream)
    for action in plan.actions:
        print("\n".join(action_text(action, colour)), file=stream)
        print("", file=stream)
    print(summary_line(plan), file=stream)
    _kept_text(plan, stream)


def _kept_text(plan: Plan, stream: TextIO) -> None:
    """Owned objects that left the manifests and stay (drift reports them as pending too)."""
    if plan.kept:
        print(f"\nKept: {len(plan.kept)} owned object{'s' if len(plan.kept) != 1 else ''} no longer declared on "
              "their host:", file=stream)
        for entry in plan.kept:
            print(f"  = {entry['address']}  # {entry['reason']}", file=stream)


def plan_as(plan: Plan, fmt: str, stream: TextIO = sys.stdout) -> None:
    """The plan in `fmt`: text (with the unmanaged parts, when asked for), json or markdown."""
    if fmt == "json":
        plan_json(plan, stream)
    elif fmt == "markdown":
        stream.write(plan_markdown(plan))
    else:
        plan_text(plan, stream)
        plan_unmanaged(plan, stream)


def plan_unmanaged(plan: Plan, stream: TextIO = sys.stdout) -> None:
    """The parts of each declared object that no manifest field manages (kept as they are)."""
    if plan.unmanaged:
        print("\nNot managed by the manifests (kept exactly as they are on the host):", file=stream)
        for address, parts in plan.unmanaged.items():
            print(f"  {address}: {', '.join(parts) or '(nothing)'}", file=stream)


def plan_problems(plan: Plan, stream: TextIO = sys.stderr) -> None:
    """What could not be planned (errors) and what was noticed and left alone (warnings)."""
    colour = use_colour(stream)
    for warning in plan.warnings:
        print(f"Warning: {warning}", file=stream)
    for problem in plan.problems:
        print(f"{_paint('Error', 'failed', colour)}: {problem}", file=stream)


def plan_json(plan: Plan, stream: TextIO = sys.stdout) -> None:
    json.dump(plan.to_json(with_ops=False), stream, indent=2, default=str)
    stream.write("\n")


def result_lines(action: Action, result: Result, colour: bool, suffix: str = "") -> list[str]:
    status = _paint(result.status, result.status, colour)
    msg = f": {result.message}" if result.message else ""
    return [f"  {action.address}: {action.action} {status}{msg}{suffix}"] + [f"      note: {n}" for n in result.notes]


def result_text(action: Action, result: Result, stream: TextIO = sys.stdout, suffix: str = "") -> None:
    print("\n".join(result_lines(action, result, use_colour(stream), suffix)), file=stream)


def results_counts(results: list[Result]) -> dict[str, int]:
    return {s: sum(r.status == s for r in results) for s in ("done", "failed", "skipped")}


def results_summary(results: list[Result]) -> str:
    """The counts of an apply; with several hosts, each host's counts under them."""
    def counts(some: list[Result]) -> str:
        return ", ".join(f"{n} {s}" for s, n in results_counts(some).items())

    hosts = sorted({r.address.split("/")[0] for r in results})
    lines = [f"Apply: {counts(results)}."]
    if len(hosts) > 1:
        lines += [f"  {host}: {counts([r for r in results if r.address.split('/')[0] == host])}" for host in hosts]
    return "\n".join(lines)


def status(hosts: dict, as_json: bool, stream: TextIO = sys.stdout, errors: dict | None = None) -> None:
    """The inventory of each host: managed (with commit), missing, unmanaged, other instances',
    broken; and the hosts that could not be read."""
    errors = errors or {}
    if as_json:
        doc = {"format_version": FORMAT_VERSION, "hosts": {h: [e.__dict__ for e in entries] for h, entries in hosts.items()},
               "errors": errors}
        json.dump(doc, stream, indent=2)
        stream.write("\n")
        return
    for host, why in errors.items():
        print(f"host {host}: ERROR {why}", file=stream)
    for host, entries in hosts.items():
        print(f"host {host}:", file=stream)
        print(f"  {'STATUS':15} {'KIND':12} {'NAME':40} {'STATE':9} {'COMMIT':13} APPLIED", file=stream)
        for e in entries:
            commit = (e.commit[:12] + ("+" if e.dirty else "")) if e.commit else "-"
            applied = e.applied or "-"
            if e.status == "other-instance":
                commit, applied = f"({e.instance})", "-"
            elif e.status in ("unmanaged", "broken"):
                commit, applied = "-", "-"
            print(f"  {e.status:15} {e.kind:12} {e.name:40} {e.state:9} {commit:13} {applied}", file=stream)
            if e.unmanaged:
                print(f"      not managed (kept as they are): {', '.join(e.unmanaged)}", file=stream)
        counts = {s: sum(e.status == s for e in entries)
                  for s in ("managed", "missing", "unmanaged", "other-instance", "broken")}
        print("  " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=stream)


def validate_json(manifest, error, stream: TextIO = sys.stdout) -> None:
    """validate --json: valid or not, what was read, and every problem with file, line and field."""
    problems = [{"file": d.file, "line": d.line, "field": d.field, "message": d.message}
                for d in getattr(error, "diagnostics", [])]
    if error is not None and not problems:
        problems = [{"file": None, "line": None, "field": "", "message": str(error)}]
    doc = {"format_version": FORMAT_VERSION, "valid": error is None,
           "objects": len(manifest.items) if manifest else 0, "hosts": sorted(manifest.hosts) if manifest else [],
           "problems": problems}
    json.dump(doc, stream, indent=2)
    stream.write("\n")


def drift_text(report, stream: TextIO = sys.stdout, show_unmanaged: bool = False) -> None:
    """Stable event lines per finding and a summary per host (and the parts no field manages)."""
    for h in report.hosts:
        if h.error:
            print(f"host {h.host}: ERROR {h.error}", file=stream)
            continue
        for f in h.findings:
            print(f"{f.address} {f.klass}: {f.reason}", file=stream)
            for ch in f.changes:
                print(f"    {ch['path']}: {moved(ch['path'], ch['before'], ch['after'])}",
                      file=stream)
        for address, parts in (h.unmanaged.items() if show_unmanaged else ()):
            if parts:
                print(f"{address} not managed (kept as they are): {', '.join(parts)}", file=stream)
        for r in h.repaired:
            print(f"{r.address} repaired: {r.status}{': ' + r.message if r.message else ''}", file=stream)
        counts = {k: sum(f.klass == k for f in h.findings) for k in CLASSES}
        verdict = "in sync" if h.in_sync else "OUT OF SYNC"
        print(f"host {h.host}: {verdict} (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")", file=stream)


GITHUB_COMMENT_LIMIT = 65536


def plan_markdown(plan: Plan, limit: int = GITHUB_COMMENT_LIMIT - 2000) -> str:
    """A pull-request comment: summary first, destructive and disruptive changes flagged at the top,
    the full plan below, cut before `limit` characters with a note."""
    lines = [f"### virt-reconcile plan ({revision(plan)})", ""]
    lines += [f"> [!CAUTION]\n> **Not planned:** {p}\n" for p in plan.problems]
    kept = [f"- `{k['address']}`: {k['reason']}" for k in plan.kept]
    if kept:
        kept = ["", f"**Kept** (owned, no longer declared on their host): {len(kept)}", ""] + kept
    if plan.empty:
        return "\n".join(lines + ["**No changes to apply.**" if kept else
                                   "**No changes.** The hosts match the manifests.", *kept, ""])
    acts, imps = summary_parts(plan)
    lines += [f"**Plan:** {acts}.<br>**Impact:** {imps}."] + kept
    risky = [a for a in plan.actions if a.impact in ("destructive", "disruptive")]
    if risky:
        lines += ["", "> [!WARNING]", "> **Destructive or disruptive changes:**"]
        lines += [f"> - `{a.address}`: {a.action}, **{a.impact}**: {a.reason}" for a in risky]
    body = ["", "<details><summary>Full plan</summary>", "", "```diff"]
    for action in plan.actions:      # the first column colours a diff block: + green, - red, ! orange
        body += [{"~": "!", "+": "+", "-": "-"}.get(line.lstrip()[:1], " ") + line[1:]
                 for line in action_text(action, colour=False)] + [""]
    body += [summary_line(plan), "```", "</details>", ""]
    text = "\n".join(lines + body)
    if len(text) <= limit:
        return text
    head = "\n".join(lines)
    note = (f"\n\n_The full plan is {len(text)} characters, over this comment's limit: it was cut. "
            "Run `virt-reconcile plan` (or see the CI job's log) for all of it._\n")
    cut = text[:max(len(head), limit - len(note) - 20)]
    cut = cut[:cut.rfind("\n")]
    if "```diff" in cut and not cut.rstrip().endswith("```"):
        cut += "\n```\n</details>"
    return cut + note
