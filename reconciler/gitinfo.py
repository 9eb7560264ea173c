"""Which git revision the manifests come from, and whether the working tree is dirty."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .ownership import Provenance


COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")     # a full SHA-1 or SHA-256 object name


def _git_bytes(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=30, input=stdin)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git(cwd: Path, *args: str) -> str | None:
    out = _git_bytes(cwd, *args)
    return None if out is None else out.decode(errors="replace").strip()


def _cwd(paths: list[Path]) -> Path:
    first = paths[0].resolve()
    return first if first.is_dir() else first.parent


def provenance(paths: list[Path]) -> Provenance:
    """Commit of the repository holding the first manifest path; dirty when any path has changes
    (modified, staged or untracked). Outside git: an empty commit."""
    if not paths:
        return Provenance()
    cwd = _cwd(paths)
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return Provenance()
    status = _git(cwd, "status", "--porcelain", "--", *[str(p.resolve()) for p in paths])
    return Provenance(commit=commit, dirty=bool(status))


def files_at(paths: list[Path], commit: str, suffixes: tuple[str, ...]) -> dict[str, bytes] | None:
    """The files below `paths` ending in `suffixes` as they were at `commit` (path -> bytes); None
    when git cannot tell (no repository, a path outside it, a commit it does not have)."""
    if not paths or not COMMIT.fullmatch(commit):
        return None
    top = _git(_cwd(paths), "rev-parse", "--show-toplevel")
    if not top:
        return None
    relative = [os.path.relpath(p.resolve(), top) for p in paths]
    if any(r == ".." or r.startswith(".." + os.sep) for r in relative):
        return None
    listed = _git_bytes(Path(top), "ls-tree", "-r", "-z", "--name-only", commit, "--", *relative)
    if listed is None:
        return None
    names = [n for n in listed.decode(errors="replace").split("\0") if n.endswith(suffixes) and "\n" not in n]
    batch = _git_bytes(Path(top), "cat-file", "--batch", stdin="".join(f"{commit}:{n}\n" for n in names).encode())
    if batch is None:
        return None
    out, at = {}, 0
    for name in names:          # each: "<object> blob <size>\n<content>\n" (one process for them all)
        header_end = batch.find(b"\n", at)
        header = batch[at:header_end].split()
        if len(header) != 3 or header[1] != b"blob":
            return None
        size = int(header[2])
        out[str(Path(top) / name)] = batch[header_end + 1:header_end + 1 + size]
        at = header_end + 1 + size + 1
    return out
