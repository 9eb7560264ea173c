"""Read manifest files into SourceDocs: plain data plus where each field stands (file:line)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import yamlsafe
from .errors import Diagnostic, ManifestError

SUFFIXES = (".yaml", ".yml")


@dataclass
class SourceDoc:
    """One YAML document: its data (Map/Seq from yamlsafe, which know their lines) and its origin."""

    file: str
    index: int
    data: Any
    line: int = 1
    origin: str = ""        # an expanded document: what it comes from ("Guest web-3 of GuestSet web")

    def line_of(self, path: tuple) -> int:
        """Line (1-based) of the deepest part of `path` that exists in the document."""
        return yamlsafe.line_of(self.data, path, self.line)

    def where(self, path: tuple) -> tuple[str, int]:
        """File and line of the deepest part of `path` (a value from a GuestClass is in its file)."""
        return yamlsafe.where(self.data, path, self.file, self.line)

    def diagnostic(self, path: tuple, message: str, field: str | None = None) -> Diagnostic:
        """A problem at `path` of this document, with its file, line and field path."""
        file, line = self.where(path)
        field = ".".join(str(p) for p in path) if field is None else field
        return Diagnostic(file, line, field, f"{message} (in {self.origin})" if self.origin else message)


def manifest_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, and *.yaml/*.yml found below named directories."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


def _read(path: Path) -> bytes:
    """The file's bytes, reading at most one byte past the size limit."""
    with open(path, "rb") as src:
        return src.read(yamlsafe.MAX_BYTES + 1)


def parse_text(file: str, text: str) -> list[SourceDoc]:
    """Every non-empty document of `text`; ManifestError naming file, line and field otherwise."""
    try:
        docs = yamlsafe.load_text(text)
    except yamlsafe.Problem as exc:
        raise ManifestError([_diagnostic(file, exc)]) from None
    return [SourceDoc(file, n, doc.data, doc.line) for n, doc in enumerate(docs)]


def load_file(path: Path) -> list[SourceDoc]:
    """Every non-empty document of one file."""
    try:
        text = yamlsafe.decode(_read(path))
    except OSError as exc:
        raise ManifestError([Diagnostic(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    except yamlsafe.Problem as exc:
        raise ManifestError([_diagnostic(str(path), exc)]) from None
    return parse_text(str(path), text)


def _diagnostic(file: str, problem: yamlsafe.Problem) -> Diagnostic:
    return Diagnostic(file, problem.line, ".".join(str(p) for p in problem.path), problem.message)


def load(paths: list[Path]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """All documents below `paths`, and the problems of the files that could not be read."""
    docs: list[SourceDoc] = []
    problems: list[Diagnostic] = []
    missing = [path for path in paths if not path.exists()]
    problems += [Diagnostic(str(path), None, "", "no such file or directory") for path in missing]
    for path in manifest_files([path for path in paths if path not in missing]):
        try:
            docs += load_file(path)
        except ManifestError as exc:
            problems += exc.diagnostics
    return docs, problems
