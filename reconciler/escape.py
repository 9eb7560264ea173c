"""The escape hatch: XML edits a guest's manifest carries for what no field covers yet (pure).

Each edit is a wish about the saved definition, checked and made in place like a field:
  {set: PATH, value: V}     the attribute or element text at PATH (a simple path) is V
  {remove: XPATH}           nothing matches XPATH
  {add: FRAGMENT, under: P} an element equal to FRAGMENT (addresses aside) is below P
An edit that holds already is no change; one that does not is a change `xml[N]` of the plan
(impact restart: no live rule knows it), written by `apply` into libvirt's saved definition,
and the definition is checked against libvirt's schema before any define. Leaving the manifest,
an edit is not undone (nothing records what was there before)."""
from __future__ import annotations

from lxml import etree

from . import xmlpath
from .diff import FieldChange

FIELD = "xml_edits"       # the name of the edits in changes and plan ops (manifest: `xml`)


def _fragment(text: str):
    return etree.fromstring(text.encode(), etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                                                            no_network=True))


def _canonical(el) -> bytes:
    """An element as compared: without the addresses and aliases libvirt gives devices."""
    copy = etree.fromstring(etree.tostring(el))
    for extra in copy.xpath(".//address | .//alias"):
        extra.getparent().remove(extra)
    return etree.tostring(copy, method="c14n")


def _added(root, edit: dict) -> bool:
    parent = xmlpath.find(root, edit.get("under", "devices").split("/"))
    want = _canonical(_fragment(edit["add"]))
    return parent is not None and any(_canonical(el) == want for el in parent if isinstance(el.tag, str))


def state(root, edit: dict) -> dict:
    """What the definition `root` holds for `edit`, in the edit's own shape."""
    if "set" in edit:
        found = root.xpath(edit["set"])
        value = None if not found else str(found[0]) if not isinstance(found[0], etree._Element) \
            else (found[0].text or "")
        return {"set": edit["set"], "value": value}
    if "remove" in edit:
        found = len(root.xpath(edit["remove"]))
        return {"remove": edit["remove"]} | ({"found": found} if found else {})
    return {"add": edit["add"], "under": edit.get("under", "devices"), "present": _added(root, edit)}


def wanted(edit: dict) -> dict:
    if "add" in edit:
        return {"add": edit["add"], "under": edit.get("under", "devices"), "present": True}
    return dict(edit)


def changes(edits: list[dict], root) -> list[FieldChange]:
    """The edits that do not hold in `root` (a guest's saved definition), as field changes."""
    out = []
    for n, edit in enumerate(edits):
        have, want = state(root, edit), wanted(edit)
        if have != want:
            out.append(FieldChange(f"{FIELD}.{n}", have, want))
    return out


def apply(root, edit: dict) -> None:
    """Make `edit` hold in `root`, in place."""
    if "set" in edit:
        xmlpath.set_value(root, edit["set"], edit["value"])
    elif "remove" in edit:
        for found in root.xpath(edit["remove"]):
            if isinstance(found, etree._Element):
                found.getparent().remove(found)
            elif getattr(found, "is_attribute", False):
                del found.getparent().attrib[found.attrname]
    elif not _added(root, edit):
        xmlpath.ensure(root, edit.get("under", "devices").split("/")).append(_fragment(edit["add"]))


def apply_all(xml: str, edits: list[dict]) -> str:
    """`xml` with every edit made (a new guest's definition)."""
    if not edits:
        return xml
    root = etree.fromstring(xml.encode())
    for edit in edits:
        apply(root, edit)
    return etree.tostring(root, encoding="unicode")
