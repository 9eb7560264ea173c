"""Fleets of similar guests: GuestClass and GuestSet documents become plain Guest documents before
validation (pure).

- A `GuestClass` holds any Guest spec fields (CPU, memory, machine, devices...). A Guest names one
  with `spec.class` and overrides it field by field: mappings merge key by key (`memory.max` alone
  replaces the class's `memory.max`), any other value, lists included, replaces the class's.
- A `GuestSet` declares `count` guests from one `template` (a Guest spec, which may name a class):
  every string of the template and of `name` is a jinja2 expression over `index` (from `start`,
  default 1) and `count`, rendered in a sandbox, e.g. `web-{{ index }}` or
  `52:54:00:10:00:{{ '%02x' % index }}`.
The expanded guests keep where each value was written: an error names the line of the class, of
the set's template or of the guest, in its own file."""
from __future__ import annotations

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import yamlsafe
from .errors import Diagnostic, ManifestError
from .loader import SourceDoc
from .models import GuestSpec

EXPANDED_KINDS = ("GuestClass", "GuestSet")
MAX_COUNT = 10_000
_SET_KEYS = {"count", "start", "name", "template"}
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _copy(value, file: str):
    """A copy of Map/Seq `value` whose every key and item records `file` (its lines are kept)."""
    if isinstance(value, yamlsafe.Map):
        out = yamlsafe.Map((k, _copy(v, file)) for k, v in value.items())
        out.lines = dict(value.lines)
        out.files = {k: file for k in value}
        return out
    if isinstance(value, yamlsafe.Seq):
        out = yamlsafe.Seq(_copy(v, file) for v in value)
        out.lines = list(value.lines)
        out.files = [file] * len(value)
        return out
    return value


def _merge(base, over):
    """`over` on top of `base`: mappings key by key, anything else replaced."""
    if not (isinstance(base, yamlsafe.Map) and isinstance(over, yamlsafe.Map)):
        return over
    out = yamlsafe.Map(base)
    out.lines, out.files = dict(base.lines), dict(getattr(base, "files", {}))
    for key, value in over.items():         # `over` is a _copy: every key names its file
        out[key] = _merge(base[key], value) if key in base else value
        out.lines[key] = over.lines[key]
        out.files[key] = over.files[key]
    return out


def _render(value, context: dict, src: SourceDoc, path: tuple, problems: list[Diagnostic]):
    """Every string of `value` rendered with `context` (other values as they are)."""
    if isinstance(value, yamlsafe.Map):
        out = yamlsafe.Map((k, _render(v, context, src, path + (k,), problems)) for k, v in value.items())
        out.lines, out.files = dict(value.lines), dict(getattr(value, "files", {}))
        return out
    if isinstance(value, yamlsafe.Seq):
        out = yamlsafe.Seq(_render(v, context, src, path + (n,), problems) for n, v in enumerate(value))
        out.lines, out.files = list(value.lines), list(getattr(value, "files", [None] * len(value)))
        return out
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        try:
            return _ENV.from_string(value).render(**context)
        except TemplateError as exc:
            problems.append(src.diagnostic(path, f"cannot render {value!r}: {exc}"))
    return value


def _classes(docs: list[SourceDoc], problems: list[Diagnostic]) -> dict[str, SourceDoc]:
    out: dict[str, SourceDoc] = {}
    for src in docs:
        if not (isinstance(src.data, dict) and src.data.get("kind") == "GuestClass"):
            continue
        meta, spec = src.data.get("metadata"), src.data.get("spec")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(src.diagnostic(("metadata", "name"), "a GuestClass needs metadata.name"))
            continue
        if not isinstance(spec, dict):
            problems.append(src.diagnostic(("spec",), "a GuestClass needs a spec: the Guest fields it sets"))
            continue
        for key in spec:
            if key not in GuestSpec.model_fields:
                problems.append(src.diagnostic(("spec", key), f"{key!r} is not a Guest field"))
        if name in out:
            problems.append(src.diagnostic(("metadata", "name"), f"duplicate GuestClass {name!r} "
                                           f"(first at {out[name].file}:{out[name].line})"))
        out[name] = src
    return out


def _with_class(src: SourceDoc, spec, path: tuple, classes: dict[str, SourceDoc],
                problems: list[Diagnostic]):
    """`spec` (a Guest spec Map) on top of the class it names, without its `class` key."""
    if not isinstance(spec, yamlsafe.Map) or "class" not in spec:
        return spec
    name = spec["class"]
    if name not in classes:
        known = ", ".join(sorted(classes)) or "none is declared"
        problems.append(src.diagnostic(path + ("class",), f"no GuestClass {name!r} ({known})"))
        return None
    own = yamlsafe.Map((k, v) for k, v in spec.items() if k != "class")
    own.lines = {k: v for k, v in spec.lines.items() if k != "class"}
    cls = classes[name]
    return _merge(_copy(cls.data["spec"], cls.file), _copy(own, src.file))


def _guest_doc(src: SourceDoc, meta, spec, spec_path: tuple = ("spec",)) -> SourceDoc:
    """A Guest document from `src`; its spec's own lines stand for it (a set's: the template's)."""
    data = yamlsafe.Map(kind="Guest", metadata=meta, spec=spec)
    data.lines = {"kind": src.data.lines.get("kind", src.line), "metadata": src.data.lines.get("metadata", src.line),
                  "spec": src.line_of(spec_path)}
    return SourceDoc(src.file, src.index, data, src.line)


def _expand_set(src: SourceDoc, classes, problems: list[Diagnostic]) -> list[SourceDoc]:
    meta, spec = src.data.get("metadata"), src.data.get("spec")
    if not isinstance(meta, yamlsafe.Map) or not isinstance(meta.get("name"), str):
        problems.append(src.diagnostic(("metadata", "name"), "a GuestSet needs metadata.name"))
        return []
    if not isinstance(spec, yamlsafe.Map):
        problems.append(src.diagnostic(("spec",), "a GuestSet needs a spec with count and template"))
        return []
    for key in spec:
        if key not in _SET_KEYS:
            problems.append(src.diagnostic(("spec", key), f"{key!r} is not a GuestSet field "
                                           f"({', '.join(sorted(_SET_KEYS))})"))
    count, start = spec.get("count"), spec.get("start", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT:
        problems.append(src.diagnostic(("spec", "count"), f"count must be a number of guests, 0 to {MAX_COUNT}"))
        return []
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= 1_000_000:
        problems.append(src.diagnostic(("spec", "start"), "start must be a number from 0 to 1000000"))
        return []
    template = spec.get("template")
    if not isinstance(template, yamlsafe.Map):
        problems.append(src.diagnostic(("spec", "template"), "template must be a Guest spec"))
        return []
    pattern = spec.get("name", meta["name"] + "-{{ index }}")
    out = []
    for index in range(start, start + count):
        context = {"index": index, "count": count}
        before = len(problems)
        name = _render(pattern, context, src, ("spec", "name"), problems)
        guest_spec = _with_class(src, _render(template, context, src, ("spec", "template"), problems),
                                 ("spec", "template"), classes, problems)
        if len(problems) > before or guest_spec is None:
            break                     # the same mistake in every guest: say it once
        guest_meta = yamlsafe.Map(meta)
        guest_meta.lines = dict(meta.lines)
        guest_meta["name"] = name
        guest_meta["labels"] = dict(meta.get("labels") or {}) | {"guestset": meta["name"]}
        guest_meta.lines.setdefault("labels", meta.lines.get("name", src.line))
        doc = _guest_doc(src, guest_meta, guest_spec, ("spec", "template"))
        doc.origin = f"Guest {name} of GuestSet {meta['name']}"
        out.append(doc)
    return out


def expand(docs: list[SourceDoc]) -> tuple[list[SourceDoc], list[Diagnostic]]:
    """The documents with classes applied and sets expanded (GuestClass documents removed)."""
    problems: list[Diagnostic] = []
    classes = _classes(docs, problems)
    out = []
    for src in docs:
        kind = src.data.get("kind") if isinstance(src.data, dict) else None
        if kind == "GuestClass":
            continue
        if kind == "GuestSet":
            out += _expand_set(src, classes, problems)
        elif kind == "Guest" and isinstance(src.data.get("spec"), yamlsafe.Map) and "class" in src.data["spec"]:
            spec = _with_class(src, src.data["spec"], ("spec",), classes, problems)
            if spec is not None:
                out.append(_guest_doc(src, src.data.get("metadata"), spec))
        else:
            out.append(src)
    return out, problems
