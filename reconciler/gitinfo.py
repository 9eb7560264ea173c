"""Which git revision the manifests come from, and whether the working tree is dirty."""
from __future__ import annotations

import subprocess
from pathlib import Path

from .ownership import Provenance


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(paths: list[Path]) -> Provenance:
    """Commit of the repository holding the first manifest path; dirty when any path has changes
    (modified, staged or untracked). Outside git: an empty commit."""
    if not paths:
        return Provenance()
    first = paths[0].resolve()
    cwd = first if first.is_dir() else first.parent
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return Provenance()
    status = _git(cwd, "status", "--porcelain", "--", *[str(p.resolve()) for p in paths])
    return Provenance(commit=commit, dirty=bool(status))
