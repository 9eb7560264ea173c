"""Guests and volumes arriving from a host a run does not read.

moves.find sees a move only when a run reads both hosts. A run that leaves the old host out
(`--host`, `--selector`, or a host that could not be read) would create the guest again on the
new host, with the same UUID and MACs and an empty disk, while the old one goes on running. The
manifests as they were at the commit the new host last applied say where each Guest and Volume
was then: one that was on a host this run does not read is an error of its own, left alone,
not created; and the old host's run keeps, not prunes, what the manifests now put on an unread host.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import gitinfo, loader, ownership, yamlsafe
from .errors import ManifestError
from .expand import expand
from .live import HostState
from .manifest import Manifest
from .moves import MOVABLE
from .ownership import Record


@dataclass(frozen=True)
class Arrival:
    """A Guest or Volume the manifests now put on `host`, declared on `came_from` at `commit`."""

    host: str
    kind: str
    name: str
    came_from: str
    commit: str

    def problem(self, manifest: Manifest) -> str:
        """The plan error that leaves it alone."""
        item = manifest.get(self.host, self.kind, self.name)
        return (f"{item.source.file}:{item.source.line}: {self.kind} {self.name} moves to host {self.host!r} from "
                f"host {self.came_from!r} (declared there at {self.commit[:12]}, the last commit applied to "
                f"{self.host!r}), which this run does not read: creating it here would make a second one with its "
                f"identity and without its data; it is left alone. Move it with a run that reads both hosts (no "
                f"--host, or a --selector that picks both), or by hand (virsh migrate) and adopt it")


def last_commit(owned: dict[tuple[str, str], Record]) -> str | None:
    """The commit of the latest application among a host's records (None: none names one)."""
    found = [rec for rec in owned.values() if gitinfo.COMMIT.fullmatch(rec.commit or "")]
    return max(found, key=lambda rec: rec.applied).commit if found else None


def placements(docs: list[loader.SourceDoc]) -> dict[tuple[str, str], set[str]]:
    """(kind, name) -> the hosts the documents put each Guest and Volume on (GuestSets expanded; a
    document without metadata.host is on the only Host). Read leniently: an old commit's documents
    need not be valid today."""
    docs, _ = expand(docs)
    data = [d.data for d in docs if isinstance(d.data, dict)]
    hosts = [d["metadata"].get("name") for d in data if d.get("kind") == "Host" and isinstance(d.get("metadata"), dict)]
    out: dict[tuple[str, str], set[str]] = {}
    for doc in data:
        meta, spec = doc.get("metadata"), doc.get("spec")
        if doc.get("kind") not in MOVABLE or not isinstance(meta, dict) or not meta.get("name"):
            continue
        host = meta.get("host") or (hosts[0] if len(hosts) == 1 else None)
        name = str(meta["name"])
        if doc["kind"] == "Volume":
            if not isinstance(spec, dict) or not spec.get("pool"):
                continue
            name = f"{spec['pool']}/{name}"
        if host:
            out.setdefault((doc["kind"], name), set()).add(str(host))
    return out


def placements_at(paths: list[Path], commit: str) -> dict[tuple[str, str], set[str]] | None:
    """placements() of the manifests below `paths` as they were at `commit` (None: git cannot tell)."""
    files = gitinfo.files_at(paths, commit, loader.SUFFIXES)
    if files is None:
        return None
    docs = []
    for name, raw in sorted(files.items()):
        try:
            docs += loader.parse_text(name, yamlsafe.decode(raw))
        except (ManifestError, yamlsafe.Problem):
            continue            # a file git holds that was not a manifest then: nothing placed in it
    return placements(docs)


def arrivals(paths: list[Path], manifest: Manifest, states: dict[str, HostState]) -> tuple[list[Arrival], list[str]]:
    """Guests and Volumes a read host would create that were declared, at the commit it last
    applied, on a host this run does not read; and warnings when that cannot be told."""
    unread = set(manifest.hosts) - set(states)
    if not unread or not paths:
        return [], []
    found, warnings, seen = [], [], {}
    for host, state in sorted(states.items()):
        absent = [i for i in manifest.for_host(host)
                  if i.ref.kind in MOVABLE and state.get(i.ref.kind, i.ref.name) is None]
        if not absent:
            continue
        commit = last_commit(ownership.records(state, manifest.hosts[host].spec.instance))
        if commit is None:
            continue            # nothing applied from git here yet: nothing can have moved to it
        if commit not in seen:
            seen[commit] = placements_at(paths, commit)
        then = seen[commit]
        if then is None:
            warnings.append(f"host {host!r}: the manifests at {commit[:12]} (the last commit applied there) cannot "
                            "be read from git, so guests moving to it from hosts this run does not read are not "
                            "looked for")
            continue
        for item in absent:
            was_on = then.get((item.ref.kind, item.ref.name), set())
            if host not in was_on and was_on & unread:
                found.append(Arrival(host, item.ref.kind, item.ref.name, min(was_on & unread), commit))
    return found, warnings


def leaving(manifest: Manifest, host: str, declared: set[tuple[str, str]], owned,
            states: dict[str, HostState]) -> dict[tuple[str, str], str]:
    """Owned Guests and Volumes `host` no longer declares that the manifests now put on a host this
    run does not read: (kind, name) -> that host. Kept, not pruned: a run reading both moves them."""
    out = {}
    for kind, name in owned:
        if kind in MOVABLE and (kind, name) not in declared and states[host].get(kind, name) is not None:
            elsewhere = sorted(h for h in manifest.hosts if h not in states and manifest.get(h, kind, name))
            if elsewhere:
                out[(kind, name)] = elsewhere[0]
    return out
