"""Adoption: a manifest written from an object's live definition, derived from the element
declarations (fields.py) (pure).

Every declared field is written at its manifest path, as its declaration says a manifest writes
it (`F.adopt`); each repeated element becomes an item named by its key (`Items.key_field`). What
the models cannot hold is then left out, one part at a time, using the models' own errors: an item
of a list (a disk on a bus the model lacks) goes whole, a field alone; a field libvirt needs
(fields.REQUIRED) cannot be left out, so such an object is refused. What is left out is not
managed: apply keeps it exactly as it is (edit.py, diff.py). `converge` then leaves out whatever a
plan would still change, so adopt, then plan, is empty."""
from __future__ import annotations

import io
from typing import Callable

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from . import fields, models
from .errors import ReconcilerError

# Manifest fields that are run state, not XML: from the object's flags.
LIFECYCLE: dict[str, Callable[[bool, bool], dict]] = {
    "Guest": lambda active, autostart: {"state": "running" if active else "shutoff", "autostart": autostart},
    "Network": lambda active, autostart: {"autostart": autostart},
    "StoragePool": lambda active, autostart: {"autostart": autostart},
    "Volume": lambda active, autostart: {},
    "Secret": lambda active, autostart: {},
    "Bridge": lambda active, autostart: {},
}


def _put(out: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        out = out.setdefault(part, {})
    out[last] = value


def _written(table: dict, values: dict, top: bool = True) -> dict:
    """The manifest form of declared `values` (fields.read) of one table (an empty list is
    written at the top only, where it means something: `boot: []`)."""
    out: dict = {}
    for name, decl in table.items():
        value = values.get(name)
        if isinstance(decl, dict):
            group = _written(decl, value or {}, False)
            if group:
                out[name] = group
        elif isinstance(decl, fields.Items):
            items = [{**(decl.key_fields(key) if decl.key_fields else {decl.key_field: key}),
                      **_written(decl.table, item, False)} for key, item in (value or {}).items()]
            if decl.single and items:
                _put(out, decl.manifest or name, items[0])
            elif items:
                _put(out, decl.manifest or name, items)
        elif isinstance(decl, fields.L):
            if value or top:
                out[name] = list(value or [])
        elif not getattr(decl, "secret", False) and not getattr(decl, "derived", False):
            # a password is never written back (nor known); a derived value follows its object
            if isinstance(decl, fields.F) and decl.adopt and value not in (None, ""):
                value = decl.adopt(value)
            if value not in (None, "", []):
                _put(out, decl.manifest or name, value)
    return out


# Manifest paths that cannot be left out (libvirt needs the value), and single-item mappings.
REQUIRED = {kind: {fields.manifest_path(kind, name.split("."), {}) for name in names}
            for kind, names in fields.REQUIRED.items()}
SINGLE = {kind: {spec.manifest or name for name, spec in table.items() if isinstance(spec, fields.Items) and spec.single}
          for kind, table in fields.TABLES.items()}


def _drop(kind: str, spec: dict, loc) -> str | None:
    """Leave out what `loc` (a location in `spec`) points at: the item of a list it is inside, the
    whole mapping of a single item, else the field. Returns what was left out (dotted path), None
    when `loc` names nothing in `spec`; ReconcilerError when that is a field libvirt needs."""
    node, trail = spec, []
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool) \
                and 0 <= part < len(node) and isinstance(node[part], dict):
            item = node.pop(part)
            return ".".join(trail) + f"[{next(iter(item.values()), part)}]"     # named by its key
        if not isinstance(node, dict) or part not in node:
            break
        trail.append(part)
        if ".".join(trail) in SINGLE[kind]:
            break
        node = node[part]
    if not trail:
        return None
    dotted = ".".join(trail)
    holder = spec
    for part in trail[:-1]:
        holder = holder[part]
    if any(req == dotted or req.startswith(dotted + ".") for req in REQUIRED[kind]):
        raise ReconcilerError(f"the manifest cannot hold its {dotted}={holder[trail[-1]]!r}")
    del holder[trail[-1]]
    _prune_empty(spec)
    return dotted


def _prune_empty(spec: dict) -> None:
    for key in [k for k, v in spec.items() if isinstance(v, dict)]:
        _prune_empty(spec[key])
        if not spec[key]:
            del spec[key]


def _fit(kind: str, doc: dict) -> list[str]:
    """Leave out of `doc` what its model refuses, until it validates; returns what was left out."""
    left_out = []
    for _ in range(10_000):
        try:
            models.DOC_MODELS[kind].model_validate(doc)
            return left_out
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = error["loc"]
            dropped = _drop(kind, doc["spec"], loc[1:]) if loc[:1] == ("spec",) and len(loc) > 1 else None
            if dropped is None:
                where = ".".join(str(p) for p in loc)
                raise ReconcilerError(f"{where}: {error['msg']}") from None
            left_out.append(dropped)
    raise ReconcilerError("the manifest does not validate")


def document(kind: str, name: str, host: str, xml: str, active: bool, autostart: bool,
             left_out: list | None = None) -> dict:
    """The manifest document of a live object (ReconcilerError when a field libvirt needs cannot
    be written); what it leaves out stays unmanaged, and is added to `left_out`."""
    spec = LIFECYCLE[kind](active, autostart) | _written(fields.TABLES[kind], fields.read(kind, xml))
    meta = {"name": name, "host": host}
    if kind == "Volume":
        pool, _, meta["name"] = name.partition("/")
        spec = {"pool": pool, **spec}
    doc = {"kind": kind, "metadata": meta, "spec": spec}
    try:
        (left_out if left_out is not None else []).extend(_fit(kind, doc))
    except ReconcilerError as exc:
        raise ReconcilerError(f"{kind}/{name} cannot be adopted: {exc}") from None
    return doc


def converge(kind: str, name: str, doc: dict, still_changed: Callable[[dict], list],
             left_out: list | None = None) -> dict:
    """Leave out of `doc` every part that a plan would still change (`still_changed(doc)` gives
    their manifest locations, fields.manifest_location), until nothing would change; what is left
    out is added to `left_out`."""
    left_out = left_out if left_out is not None else []
    for _ in range(1_000):
        locs = still_changed(doc)
        if not locs:
            return doc
        try:
            dropped = [_drop(kind, doc["spec"], loc) for loc in _one_per_item(locs)]
            left_out += [d for d in dropped if d] + _fit(kind, doc)
        except ReconcilerError as exc:
            raise ReconcilerError(f"{kind}/{name} cannot be adopted: {exc}") from None
        if not any(dropped):
            raise ReconcilerError(f"{kind}/{name} cannot be adopted: a plan would still change "
                                  + ", ".join(".".join(map(str, loc)) for loc in locs))
    raise ReconcilerError(f"{kind}/{name} cannot be adopted: its manifest does not settle")


def _one_per_item(locs) -> list:
    """One location per list item (an item goes whole), later items first so that earlier
    positions stay right."""
    seen, out = set(), []
    for loc in locs:
        cut = next((i + 1 for i, p in enumerate(loc) if isinstance(p, int)), len(loc))
        if tuple(loc[:cut]) not in seen:
            seen.add(tuple(loc[:cut]))
            out.append(list(loc[:cut]))
    return sorted(out, key=lambda loc: tuple(-p if isinstance(p, int) else 0 for p in loc))


def _quoted(value):
    """Quote strings with ':' (MACs) so every YAML parser reads them as strings."""
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return DoubleQuotedScalarString(value) if isinstance(value, str) and ":" in value else value


def yaml_text(doc: dict) -> str:
    doc = _quoted(doc)
    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 4096
    yaml.dump(doc, out)
    return out.getvalue()
