"""The drift run: classify every host, optionally repair drifted objects, write JSON and metrics."""
from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, desired, drift, gitinfo, pipeline
from .apply import Options, Result
from .errors import ReconcilerError
from .plan import Plan


@dataclass
class HostReport:
    host: str
    uri: str
    findings: list[drift.Finding] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    repaired: list[Result] = field(default_factory=list)
    unmanaged: dict[str, list[str]] = field(default_factory=dict)   # owned object -> parts no field manages

    @property
    def in_sync(self) -> bool:
        return self.error is None and drift.in_sync(self.findings)


@dataclass
class DriftReport:
    hosts: list[HostReport]
    git: dict
    started: float = field(default_factory=time.time)

    @property
    def exit_code(self) -> int:
        if any(h.error for h in self.hosts):
            return 1
        return 0 if all(h.in_sync for h in self.hosts) else 2


def run(paths: list[Path], only_host: str | pipeline.HostChoice | None = None, repair: bool = False,
        options: Options = Options(), lock_timeout: float = 300, say=lambda msg: None) -> DriftReport:
    """Read-only classification of every host, hosts at the same time (one failing host does not
    stop the others)."""
    manifest = pipeline.load(paths)
    prov = gitinfo.provenance(paths)
    report = DriftReport([], {"commit": prov.commit, "dirty": prov.dirty})
    def one(host: str, uri: str) -> HostReport:
        start = time.monotonic()
        entry = HostReport(host, uri)
        ctx = desired.Context(manifest.hosts[host].spec.instance, prov)
        try:
            state = pipeline.observe_host(manifest, host, uri)
            entry.findings = drift.classify(manifest, host, state, ctx, entry.unmanaged)
            if repair:
                entry.repaired = _repair(manifest, host, uri, ctx, entry.findings, options, lock_timeout, say)
                state = pipeline.observe_host(manifest, host, uri)
                entry.unmanaged = {}
                entry.findings = drift.classify(manifest, host, state, ctx, entry.unmanaged)
        except ReconcilerError as exc:
            entry.error = str(exc)
        entry.duration = time.monotonic() - start
        return entry

    hosts = pipeline.hosts_of(manifest, only_host)
    with ThreadPoolExecutor(max(1, min(len(hosts), pipeline.MAX_HOSTS_AT_ONCE)), "drift") as pool:
        report.hosts = list(pool.map(one, hosts, hosts.values()))      # hosts at the same time
    return report


def _repair(manifest, host, uri, ctx, findings, options, lock_timeout, say) -> list[Result]:
    """Apply corrective changes for objects that drifted (or whose running state differs) and
    have no pending git change."""
    pending = {f.address for f in findings if f.klass == "pending"}
    fixable = {f.address for f in findings if f.klass in ("drift", "runtime")}
    targets = fixable - pending
    for address in sorted(fixable & pending):
        say(f"{address}: drifted, but the manifests changed too: not repaired (use apply)")
    if not targets:
        return []
    with pipeline.locked(pipeline.targets(manifest, {host: uri}), "drift --repair", lock_timeout, say,
                         ctx.provenance.commit) as conns:
        states = {host: pipeline.observe_host(manifest, host, uri)}
        full = pipeline.make_plan(manifest, states, provenance=ctx.provenance)
        plan = Plan(full.hosts, [a for a in full.actions if a.address in targets], full.instances, full.git)
        return pipeline.execute(plan, conns, options)


def report_json(report: DriftReport) -> dict:
    return {
        "format_version": "1.0", "tool_version": __version__,
        "created_at": datetime.fromtimestamp(report.started, timezone.utc).isoformat(timespec="seconds"),
        "git": report.git,
        "hosts": {h.host: {"uri": h.uri, "in_sync": h.in_sync, "error": h.error, "duration_seconds": round(h.duration, 3),
                           "counts": drift.counts(h.findings), "unmanaged": h.unmanaged,
                           "repaired": [r.__dict__ for r in h.repaired]} for h in report.hosts},
        "findings": [f.to_json() for h in report.hosts for f in h.findings],
    }


def write_json(report: DriftReport, path: Path) -> None:
    _atomic_write(path, json.dumps(report_json(report), indent=2, default=str) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (the previous
    file stays whole when anything fails); ReconcilerError naming the file on failure."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise ReconcilerError(f"cannot write {path}: {exc.strerror or exc}") from None


def _previous_success(path: Path) -> dict[str, float]:
    """Last success times from the previous metrics file (kept when this run fails)."""
    found = {}
    try:
        for line in path.read_text().splitlines():
            if line.startswith("virt_reconcile_last_success_timestamp_seconds{"):
                host = line.split('host="')[1].split('"')[0]
                found[host] = float(line.rsplit(" ", 1)[1])
    except (OSError, IndexError, ValueError):
        pass
    return found


def write_metrics(report: DriftReport, path: Path) -> None:
    """Prometheus textfile (node_exporter's textfile collector), written atomically."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    registry = CollectorRegistry()
    labels = ["host"]
    in_sync = Gauge("virt_reconcile_in_sync", "1 when the host matches the manifests", labels, registry=registry)
    objects = Gauge("virt_reconcile_objects", "objects per drift class", ["host", "class"], registry=registry)
    last_run = Gauge("virt_reconcile_last_run_timestamp_seconds", "time of the last drift run", labels,
                     registry=registry)
    last_ok = Gauge("virt_reconcile_last_success_timestamp_seconds", "time of the last run that read the host",
                    labels, registry=registry)
    duration = Gauge("virt_reconcile_run_duration_seconds", "duration of the last run", labels, registry=registry)
    errors = Gauge("virt_reconcile_run_errors", "1 when the last run failed for the host", labels, registry=registry)
    previous = _previous_success(path)
    for h in report.hosts:
        in_sync.labels(h.host).set(1 if h.in_sync else 0)
        for klass, n in drift.counts(h.findings).items():
            objects.labels(h.host, klass).set(n)
        last_run.labels(h.host).set(report.started)
        if h.error is None:
            last_ok.labels(h.host).set(report.started)
        elif h.host in previous:
            last_ok.labels(h.host).set(previous[h.host])
        duration.labels(h.host).set(h.duration)
        errors.labels(h.host).set(1 if h.error else 0)
    _atomic_write(path, generate_latest(registry).decode())
