"""Find-or-create and remove on lxml trees along the simple relative paths the element
declarations use: `a/b[@type='x']/@attr`, `a/b` (text) or `a/b` (presence).

Only what a path names is touched: a created element gets the attributes its predicates state and
is appended after its siblings; a removal prunes the ancestors it leaves empty, up to the element
the path started from. Everything else in the tree stays as it was."""
from __future__ import annotations

import re

from lxml import etree

_SEGMENT = re.compile(r"^(?P<tag>[A-Za-z_][\w.-]*)(?P<preds>(?:\[@[\w-]+='[^']*'\])*)$")
_PRED = re.compile(r"\[@([\w-]+)='([^']*)'\]")


def split(path: str) -> tuple[list[str], str | None]:
    """Element segments and the attribute a path ends with (None: the element itself)."""
    parts = path.split("/") if path else []
    if parts and parts[-1].startswith("@"):
        return parts[:-1], parts[-1][1:]
    return parts, None


def _matches(el, tag: str, preds: list[tuple[str, str]]) -> bool:
    return el.tag == tag and all(el.get(k) == v for k, v in preds)


def _parse(segment: str) -> tuple[str, list[tuple[str, str]]]:
    found = _SEGMENT.match(segment)
    if not found:
        raise ValueError(f"not a simple path segment: {segment!r}")
    return found["tag"], _PRED.findall(found["preds"])


def find(node, segments: list[str]):
    """The first element along `segments` below `node`, or None."""
    for segment in segments:
        tag, preds = _parse(segment)
        node = next((c for c in node if isinstance(c.tag, str) and _matches(c, tag, preds)), None)
        if node is None:
            return None
    return node


def ensure(node, segments: list[str]):
    """The element along `segments`, created (with its predicates' attributes) where missing."""
    for segment in segments:
        tag, preds = _parse(segment)
        child = next((c for c in node if isinstance(c.tag, str) and _matches(c, tag, preds)), None)
        if child is None:
            child = etree.SubElement(node, tag, dict(preds))
        node = child
    return node


def prune(el, stop) -> None:
    """Remove `el` and then its ancestors while they are left empty (below `stop`)."""
    while el is not None and el is not stop and len(el) == 0 and not el.attrib and not (el.text or "").strip():
        parent = el.getparent()
        parent.remove(el)
        el = parent


def set_value(node, path: str, value: str | None) -> None:
    """Set an attribute or an element's text; None removes it (and prunes what is left empty)."""
    segments, attr = split(path)
    if value is None:
        el = find(node, segments)
        if el is None:
            return
        if attr is None:
            el.text = None
        elif attr in el.attrib:
            del el.attrib[attr]
        prune(el, node)
        return
    el = ensure(node, segments)
    if attr is None:
        el.text = value
    else:
        el.set(attr, value)


def set_present(node, path: str, present: bool) -> None:
    """Create the element (with its predicates) or remove every element the path names."""
    segments, _ = split(path)
    if present:
        ensure(node, segments)
        return
    parent = find(node, segments[:-1]) if len(segments) > 1 else node
    if parent is None:
        return
    tag, preds = _parse(segments[-1])
    for child in [c for c in parent if isinstance(c.tag, str) and _matches(c, tag, preds)]:
        parent.remove(child)
    if parent is not node:
        prune(parent, node)
