"""Read manifest files into SourceDocs: plain data plus where each field stands (file:line)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import Diagnostic, ManifestError

SUFFIXES = (".yaml", ".yml")


@dataclass
class SourceDoc:
    """One YAML document: its plain data and a way to find the line of any field path."""

    file: str
    line: int
    data: Any
    node: Any = field(repr=False)

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
    """Every non-empty document of one file; a YAML error becomes a ManifestError with its line."""
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
        docs = []
        for node in yaml.load_all(text):
            if node is None:
                continue
            line = node.lc.line + 1 if hasattr(node, "lc") else 1
            docs.append(SourceDoc(str(path), line, _plain(node), node))
        return docs
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError([Diagnostic(str(path), line, "", f"YAML syntax: {problem}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Diagnostic(str(path), None, "", f"cannot read: {exc}")]) from None


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
