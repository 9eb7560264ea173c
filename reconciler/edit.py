"""Edit a saved definition in place (pure): exactly the changed fields, through their declarations.

An update never re-renders an object. Its new definition is libvirt's saved definition (read
with VIR_DOMAIN_XML_SECURE|INACTIVE, so passwords survive) with each planned change written by
the field's declaration in fields.py: a value is set, None removes what the field names, a new
keyed element (disk, NIC, DHCP host...) is the snippet rendered for it. Every other element and
attribute stays as libvirt holds it, and so do UUID, MACs, addresses, NVRAM and TPM settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from . import escape, fields
from .identity import OWNER_NS


@dataclass(frozen=True)
class Edit:
    """One planned change: the field's path (as the diff names it), the new value (None: remove),
    and for a new keyed element the XML rendered for it."""

    path: tuple[str, ...]
    value: Any
    xml: str | None = None

    def to_json(self) -> dict:
        return {"path": list(self.path), "value": self.value, "xml": self.xml}

    @classmethod
    def from_json(cls, doc: dict) -> "Edit":
        return cls(tuple(doc["path"]), doc.get("value"), doc.get("xml"))


def _apply(table: dict, node, edit: Edit, depth: int = 0) -> None:
    name = edit.path[depth]
    if depth == 0 and name == escape.FIELD:          # an XML edit of the escape hatch
        escape.apply(node, edit.value)
        return
    spec = table[name]
    if isinstance(spec, dict):
        _apply(spec, node, edit, depth + 1)
    elif isinstance(spec, fields.Items):
        key = edit.path[depth + 1]
        el = spec.find(node, key)
        if len(edit.path) == depth + 2:            # the whole element: add, replace or remove
            if el is not None:
                el.getparent().remove(el)
            if edit.value is not None:
                new = etree.fromstring(edit.xml.encode())
                if el is not None and new.find("address") is None and el.find("address") is not None:
                    new.append(el.find("address"))  # a device attached live keeps the address libvirt gave it
                spec.parent(node).append(new)
        elif el is not None:                          # a field of the element (or of a group in it)
            _apply(spec.table, el, edit, depth + 2)
    else:
        spec.set(node, edit.value)


def set_owner(root, marker: str | None) -> None:
    """Put the owner marker in <metadata> (None: take ours out), keeping other applications' entries."""
    meta = root.find("metadata")
    if meta is None and marker is None:
        return
    if meta is None:
        meta = etree.Element("metadata")
        anchor = max((i + 1 for i, c in enumerate(root) if c.tag in ("name", "uuid", "title", "description")),
                     default=0)
        root.insert(anchor, meta)
    for old in meta.findall(f"{{{OWNER_NS}}}owner"):
        meta.remove(old)
    if marker is not None:
        meta.append(etree.fromstring(marker.encode()))


def apply(kind: str, saved: str, edits: list[Edit], marker: str | None = None) -> str:
    """`saved` with `edits` written in, and the owner marker put in (None: taken out); nothing
    else changes."""
    root = fields.parse(saved)
    for edit in edits:
        _apply(fields.TABLES[kind], root, edit)
    set_owner(root, marker)
    return etree.tostring(root, encoding="unicode")
