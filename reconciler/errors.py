"""One error root for everything virt-reconcile reports to a user."""
from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Root of every error the tool raises on purpose; the CLI prints it and exits 1."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the manifests, pinned to a file, line and field path."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ManifestError(ReconcilerError, ValueError):
    """The manifests are invalid; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line or 0, d.field))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class HostError(ReconcilerError, ConnectionError):
    """A host cannot be reached or answered with an error outside any one object."""


class PlanError(ReconcilerError):
    """The wanted change cannot be planned safely (e.g. shrinking a volume)."""


class AdapterError(ReconcilerError):
    """A libvirt call failed; names the operation, the object and libvirt's message. `reason`
    says what kind of failure it was where callers act on it: "gone" (no such object),
    "failed" (libvirt refused, e.g. a name in use), "invalid" (wrong state), "built" (a pool's
    device already holds something)."""

    def __init__(self, op: str, target: str, message: str, code: int | None = None, reason: str = ""):
        self.op, self.target, self.code, self.reason, self.message = op, target, code, reason, message
        super().__init__(f"{op} {target}: {message}")


class PlanFileError(ReconcilerError, ValueError):
    """A saved plan file cannot be used (unreadable, other format version)."""
