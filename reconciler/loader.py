"""Read manifest files into SourceDocs: plain data plus where each field stands (file:line)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import Diagnostic, ManifestError

SUFFIXES = (".yaml", ".yml")


@dataclass
class SourceDoc:
    """One YAML document: its plain data and a way to find the line of any field path.

    Data comes from the fast (libyaml) safe loader; positions are read only when an error
    needs them, by parsing the file again with the round-trip loader."""

    file: str
    index: int
    data: Any

    @property
    def node(self) -> Any:
        stat = Path(self.file).stat()
        return _positions(self.file, stat.st_mtime_ns, stat.st_size)[self.index]

    @property
    def line(self) -> int:
        node = self.node
        return node.lc.line + 1 if hasattr(node, "lc") else 1

    def line_of(self, path: tuple) -> int:
        """Line (1-based) of the deepest part of `path` that exists in the document."""
        node, line = self.node, self.line
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line


@lru_cache(maxsize=64)
def _positions(file: str, _mtime_ns: int, _size: int) -> list:
    """The round-trip parse of a file's non-empty documents (they carry line numbers);
    cached per version of the file."""
    text = Path(file).read_text(encoding="utf-8")
    return [node for node in YAML(typ="rt").load_all(text) if node is not None]


def _plain(node: Any) -> Any:
    """ruamel's round-trip types to plain dict/list/str/int."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def manifest_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, and *.yaml/*.yml found below named directories."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


def load_file(path: Path) -> list[SourceDoc]:
    """Every non-empty document of one file; a YAML error becomes a ManifestError with its line.

    libyaml (fast) reads first; what it rejects but YAML 1.2 allows (a ':' inside a plain scalar
    in a flow mapping, as in {mac: 52:54:00:...}) is read again by ruamel's own parser."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Diagnostic(str(path), None, "", f"cannot read: {exc}")]) from None
    for typ in ("safe", "rt"):
        try:
            nodes = [node for node in YAML(typ=typ).load_all(text) if node is not None]
            return [SourceDoc(str(path), n, _plain(node)) for n, node in enumerate(nodes)]
        except MarkedYAMLError as exc:
            error = exc
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    problem = error.problem or error.context or "invalid YAML"
    raise ManifestError([Diagnostic(str(path), line, "", f"YAML syntax: {problem}")]) from None


def load(paths: list[Path]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """All documents below `paths`, and the problems of the files that could not be read."""
    docs: list[SourceDoc] = []
    problems: list[Diagnostic] = []
    files = manifest_files(paths)
    for path in paths:
        if not path.exists():
            problems.append(Diagnostic(str(path), None, "", "no such file or directory"))
    for path in files:
        try:
            docs += load_file(path)
        except ManifestError as exc:
            problems += exc.diagnostics
    return docs, problems
