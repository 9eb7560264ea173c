"""The field reference (Markdown), derived from the element declarations (fields.py) and the
manifest models: each manifest field, the libvirt XML it is bound to, what happens when it leaves
the manifest, and how a change reaches a running object. README's "Field reference" is this text
(a unit test keeps them equal); `virt-reconcile schema --reference` prints it."""
from __future__ import annotations

import typing

from pydantic import BaseModel

from . import fields
from .kinds import KINDS



def _model_of(annotation):
    """The pydantic model an annotation holds (through Optional, list, Annotated), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def description(kind: str, path: str) -> str:
    """The model's description of the manifest field at dotted `path` ('' when it has none)."""
    model, info = KINDS[kind].spec, None
    for part in path.split("."):
        if model is None or part not in model.model_fields:
            return ""
        info = model.model_fields[part]
        model = _model_of(info.annotation)
    return (info.description or "") if info else ""


def _first_sentence(doc: str | None) -> str:
    text = " ".join((doc or "").split())
    return text.split(". ")[0].rstrip(".") if text else ""


def rows(kind: str) -> list[tuple[str, str, str, str, str]]:
    """(manifest field, libvirt XML, meaning, when left out, live) for every declared field (the
    meaning is the model's description)."""
    out = []

    def walk(table: dict, prefix: str, xprefix: str, live_default) -> None:
        for name, decl in table.items():
            if isinstance(decl, dict):
                walk(decl, f"{prefix}{name}.", xprefix, live_default)
            elif isinstance(decl, fields.Items):
                base = prefix + (decl.manifest or name)
                item = f"{base}." if decl.single else f"{base}[]."
                xpath = xprefix + decl.xpath
                out.append((f"{item}{decl.key_field}", f"{xpath}/{decl.key}", description(kind, base),
                            "the item is removed (only items the tool manages; see Managed fields)",
                            _first_sentence(decl.live.__doc__) if decl.live else live_default))
                walk(decl.table, item, xpath + "/", live_default)
            else:
                path = decl.manifest if getattr(decl, "manifest", None) else prefix + name
                required = isinstance(decl, fields.F) and decl.required
                left = "kept as it is (libvirt needs a value)" if required else "removed (libvirt's default)"
                live = _first_sentence(decl.live.__doc__) if getattr(decl, "live", None) else live_default
                xpath = " | ".join(xprefix + branch for branch in decl.xpath.split(" | "))
                out.append((path, xpath, description(kind, path), left, live))

    walk(KINDS[kind].table, "", "", KINDS[kind].not_live)
    return out


def markdown() -> str:
    """Every kind's table (meanings and defaults are in README's tables of each kind)."""
    parts = []
    for kind in KINDS:
        parts.append(f"#### {kind}\n\n| field | libvirt XML | left out after being stated | "
                     "change on a running object |\n|---|---|---|---|")
        for path, xpath, _meaning, left, live in rows(kind):
            cells = (f"`{path}`", f"`{xpath}`".replace("|", "\\|"), left, live)
            parts[-1] += "\n| " + " | ".join(cells) + " |"
    return "\n\n".join(parts) + "\n"


START, END = "<!-- reference:start -->\n", "<!-- reference:end -->"


def with_reference(readme: str) -> str:
    """README's text with its field reference section regenerated."""
    head, rest = readme.split(START, 1)
    return head + START + markdown() + END + rest.split(END, 1)[1]


if __name__ == "__main__":        # python -m reconciler.reference README.md: regenerate the section
    import sys
    from pathlib import Path
    target = Path(sys.argv[1])
    target.write_text(with_reference(target.read_text(encoding="utf-8")), encoding="utf-8")
