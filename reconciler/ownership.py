"""Ownership records on the host: who applied an object, from which commit, with what content.

Guests and networks carry an owner marker in their own <metadata>, written in the define call.
Pools and volumes have no metadata in libvirt 9.0, so their records live in the metadata of one
never-started inventory domain per instance (virt-reconcile-inventory-INSTANCE), written before
the pool or volume is created. Everything here is pure XML work.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from lxml import etree

from . import fields
from .identity import OWNER_NS
from .kinds import has_marker
from .live import HostState
from .render import render

INVENTORY_PREFIX = "virt-reconcile-inventory-"
LOCK_PREFIX = "virt-reconcile-lock-"
NSMAP = {"vr": OWNER_NS}


@dataclass
class Provenance:
    """Where the manifests of this run come from."""

    commit: str = ""
    dirty: bool = False


@dataclass
class Record:
    """What the tool applied to one object, as recorded on the host."""

    instance: str
    hash: str
    commit: str = ""
    dirty: bool = False
    applied: str = ""
    protect: bool = False
    content: dict = field(default_factory=dict)    # {"fields": ..., "autostart": ...}
    uuid: str | None = None

    @property
    def fields(self) -> dict:
        return self.content.get("fields", {})


def owner_context(instance: str, digest: str, content: dict, provenance: Provenance, protect: bool) -> dict:
    return {"instance": instance, "hash": digest, "commit": provenance.commit, "dirty": provenance.dirty,
            "protect": protect, "applied": "", "record": json.dumps(content, sort_keys=True, separators=(",", ":"))}


def marker_xml(context: dict) -> str:
    return render("owner.xml.j2", o=context).strip()


def _record(el, uuid: str | None = None) -> Record:
    try:
        content = json.loads(el.text or "{}")
    except ValueError:
        content = {}
    return Record(el.get("instance", "default"), el.get("hash", ""), el.get("commit", ""),
                  el.get("dirty") == "yes", el.get("applied", ""), el.get("protect") == "yes", content, uuid)


def read_marker(xml) -> Record | None:
    """The owner marker of a guest or network definition (XML text or element), or None."""
    if xml is None or (isinstance(xml, str) and not xml):
        return None
    found = fields.parse(xml).xpath("metadata/vr:owner", namespaces=NSMAP)
    return _record(found[0]) if found else None


def owner_hash(xml) -> str | None:
    """The hash in a definition's owner marker, or None."""
    rec = read_marker(xml)
    return rec.hash if rec else None


def restart_pending(live) -> bool:
    """A running guest whose live owner marker differs from its saved one runs an older definition."""
    return bool(live.active and live.live_xml) and owner_hash(live.live_root) != owner_hash(live.root)


def read_inventory(xml) -> dict[tuple[str, str], Record]:
    """Records of pools and volumes kept in an inventory domain's metadata (XML text or element)."""
    if xml is None or (isinstance(xml, str) and not xml):
        return {}
    root = fields.parse(xml)
    return {(el.get("kind"), el.get("name")): _record(el, el.get("uuid"))
            for el in root.xpath("metadata/vr:inventory/vr:object", namespaces=NSMAP)}


def inventory_name(instance: str) -> str:
    return INVENTORY_PREFIX + instance


def inventory_domain(instance: str) -> str:
    return render("inventory.xml.j2", name=inventory_name(instance), instance=instance)


def inventory_with(current_xml: str | None, instance: str, kind: str, name: str,
                   record: dict | None) -> str:
    """The inventory element after setting (record) or removing (None) one object's entry."""
    root = etree.Element(f"{{{OWNER_NS}}}inventory", nsmap=NSMAP, instance=instance)
    entries = {}
    if current_xml:
        for el in fields.parse(current_xml).xpath("metadata/vr:inventory/vr:object", namespaces=NSMAP):
            entries[(el.get("kind"), el.get("name"))] = el
    if record is None:
        entries.pop((kind, name), None)
    else:
        el = etree.Element(f"{{{OWNER_NS}}}object", nsmap=NSMAP)
        for key in ("kind", "name", "uuid", "instance", "hash", "commit", "dirty", "protect", "applied"):
            value = record.get(key)
            el.set(key, ("yes" if value else "no") if isinstance(value, bool) else str(value or ""))
        el.text = record["record"]
        entries[(kind, name)] = el
    for key in sorted(entries):
        root.append(entries[key])
    return etree.tostring(root, encoding="unicode")


def stamp_marker(marker: str) -> str:
    """An owner marker element with the time of application set to now."""
    from datetime import datetime, timezone
    el = etree.fromstring(marker.encode())
    el.set("applied", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return etree.tostring(el, encoding="unicode")


def stamp(xml: str, applied: str) -> str:
    """Set the time of application on the owner marker of a definition."""
    root = fields.parse(xml)
    for el in root.xpath("metadata/vr:owner", namespaces=NSMAP):
        el.set("applied", applied)
    return etree.tostring(root, encoding="unicode")


def records(state: HostState, instance: str) -> dict[tuple[str, str], Record]:
    """Every object of `state` that this instance owns, with its record."""
    out = {}
    for (kind, name), obj in state.objects.items():
        if has_marker(kind):
            rec = read_marker(obj.root)
            if rec and rec.instance == instance and not is_internal(kind, name):
                out[(kind, name)] = rec
    inventory = state.get("Guest", inventory_name(instance))
    for (kind, name), rec in read_inventory(inventory.root if inventory else None).items():
        live = state.get(kind, name)
        if kind == "StoragePool" and live is not None and fields.uuid_of(live.root) != rec.uuid:
            continue            # a pool of the same name made by someone else: not ours
        out[(kind, name)] = rec  # a recorded object that is gone is reported as missing
    return out


def is_internal(kind: str, name: str) -> bool:
    """The tool's own helper objects (inventory and lock domains)."""
    return kind == "Guest" and name.startswith((INVENTORY_PREFIX, LOCK_PREFIX))
