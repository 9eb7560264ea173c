"""Semantic diff of canonical fields: only what the desired side states is compared."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff

from . import fields

# Keyed collections: the desired set is authoritative, so live-only keys show as removals.
KEYED = {name for table in fields.TABLES.values() for name, spec in table.items() if isinstance(spec, fields.Items)}

# Live values that mean the same as a desired value (each rule says why).
EQUIVALENT = {
    # libvirt expands machine aliases to QEMU's newest versioned type at define time.
    "machine": lambda want, have: (want == "q35" and str(have).startswith("pc-q35-"))
    or (want == "pc" and str(have).startswith("pc-i440fx-")),
}


@dataclass
class FieldChange:
    """One changed field: dotted path, live value (None: absent) and desired value (None: remove)."""

    path: str
    before: Any
    after: Any

    @property
    def parts(self) -> list[str]:
        return self.path.split(".")


def project(desired: dict, live: dict) -> dict:
    """The part of `live` that `desired` speaks about (all keys of keyed collections)."""
    out = {}
    for key, want in desired.items():
        if key not in live:
            continue
        have = live[key]
        if key in EQUIVALENT and EQUIVALENT[key](want, have):
            have = want
        if key in KEYED and isinstance(have, dict):
            out[key] = {k: (project(want[k], v) if k in want else v) for k, v in have.items()}
        elif isinstance(want, dict) and isinstance(have, dict):
            out[key] = project(want, have)
        else:
            out[key] = have
    return out


def _get(values: dict, path: list) -> Any:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def diff(desired: dict, live: dict) -> list[FieldChange]:
    """Changes that turn `live` into `desired`, one per field (lists compare as a whole)."""
    have = project(desired, live)
    if have == desired:
        return []
    tree = DeepDiff(have, desired, view="tree", verbose_level=2)
    changes: dict[str, FieldChange] = {}
    for report in tree.values():
        for level in report:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            path = [str(p) for p in path[:cut]]
            key = ".".join(path)
            if key not in changes:
                changes[key] = FieldChange(key, _get(have, path), _get(desired, path))
    return sorted(changes.values(), key=lambda c: c.path)


def flatten(values: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) for every leaf, to show a created object's fields."""
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += flatten(value, path + ".")
        else:
            out.append((path, value))
    return out
