"""Semantic diff of canonical fields, three-way: the manifest manages what it states now (S) and
what it stated at the last apply (M, from the owner record).

- a field in S is set when the live value differs;
- a field in M but not in S is reset: removed, or set to libvirt's default (fields libvirt needs,
  fields.REQUIRED, keep their value); a keyed element (disk, NIC, DHCP host...) in M but not in
  S is removed;
- anything else is never touched, whatever its value: a device or field the tool never managed
  stays as it is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import fields

# Keyed collections: items compared by key; live-only keys count only when M holds them.
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


def project(desired: dict, live: dict, applied: dict | None = None, exclusive=()) -> dict:
    """The part of `live` that `desired` speaks about; of keyed collections, the items `desired`
    or `applied` names (all of them for `exclusive` collections)."""
    applied = applied or {}
    out = {}
    for key, want in desired.items():
        if key not in live:
            continue
        have = live[key]
        if key in EQUIVALENT and EQUIVALENT[key](want, have):
            have = want
        if key in KEYED and isinstance(have, dict):
            named = set(have) if key in exclusive else set(want) | set(applied.get(key) or {})
            out[key] = {k: (project(want[k], v) if k in want else v) for k, v in have.items() if k in named}
        elif isinstance(want, dict) and isinstance(have, dict):
            out[key] = project(want, have)
        else:
            out[key] = have
    return out


def get_path(values: dict, path: list) -> Any:
    """The value at `path` in nested `values`, or None."""
    return _get(values, path)


def _get(values: dict, path: list) -> Any:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def _leaves(values: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in values.items():
        if isinstance(value, dict) and key not in KEYED:
            out += _leaves(value, prefix + (key,))
        else:
            out.append(prefix + (key,))
    return out


def _resets(desired: dict, live: dict, applied: dict, required: set[str]) -> list[FieldChange]:
    """Fields in M, not in S, that still have a value on the host (keyed collections aside)."""
    out = []
    for path in _leaves(applied):
        dotted = ".".join(path)
        if path[0] in KEYED or dotted in required or _get(desired, list(path)) is not None:
            continue
        have = _get(live, list(path))
        if have not in (None, "", [], False):
            out.append(FieldChange(dotted, have, None))
    return out


def diff(desired: dict, live: dict, applied: dict | None = None, required: set[str] = frozenset(),
         exclusive=()) -> list[FieldChange]:
    """Changes that turn `live` into `desired`, one per field (lists compare as a whole); with the
    fields `applied` at the last apply, also the resets of what left the manifest; of `exclusive`
    collections, live items the manifest does not state are removed too."""
    applied = applied or {}
    desired = dict(desired) | {k: {} for k in applied if k in KEYED and k not in desired}
    resets = _resets(desired, live, applied, required)
    have = project(desired, live, applied, exclusive)
    if have == desired:
        return resets
    from deepdiff import DeepDiff      # only when something differs (a no-op plan never imports it)
    tree = DeepDiff(have, desired, view="tree", verbose_level=2)
    changes: dict[str, FieldChange] = {c.path: c for c in resets}
    for report in tree.values():
        for level in report:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            path = [str(p) for p in path[:cut]]
            for change in _per_item(path, _get(have, path), _get(desired, path)):
                changes.setdefault(change.path, change)
    return sorted(changes.values(), key=lambda c: c.path)


def running_diff(kind: str, desired: dict, running: dict) -> list[FieldChange]:
    """Fields declared `runtime` whose value in the running object differs from `desired` (what
    `virsh setvcpus --live` or `change-media --live` change without touching the saved definition)."""
    return [fc for fc in diff(desired, running)
            if getattr(fields.declaration(kind, fc.parts), "runtime", False)]


def _per_item(path: list[str], before: Any, after: Any) -> list[FieldChange]:
    """A change of a whole keyed collection (one side empty) as one change per item."""
    if len(path) != 1 or path[0] not in KEYED or not isinstance(before, dict) or not isinstance(after, dict):
        return [FieldChange(".".join(path), before, after)]
    return [FieldChange(f"{path[0]}.{key}", before.get(key), after.get(key))
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]


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
