"""Ownership records on the host: who applied an object, from which commit, with what content.

Guests and networks carry an owner marker in their own <metadata>, written in the define call.
Pools and volumes have no metadata in libvirt 9.0, so each one's record is a libvirt secret of
its own (no value, private; usage `virt-reconcile/INSTANCE/KIND/NAME`, the record as JSON in its
description), written before the pool or volume is created and removed when it is forgotten:
secrets are defined atomically, survive daemon restarts, and are not listed as guests. Versions
before kept them in one never-started inventory domain per instance; those are still read, and a
plan moves them to secrets. Everything here is pure XML work.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from lxml import etree
from markupsafe import escape

from . import __version__, fields
from .identity import OWNER_NS, object_uuid
from .kinds import has_marker
from .live import HostState
from .render import render

INVENTORY_PREFIX = "virt-reconcile-inventory-"     # legacy: records kept in a domain (read, then moved)
LOCK_PREFIX = "virt-reconcile-lock-"               # legacy lock domains (hidden from listings)
RECORD_USAGE = "virt-reconcile/"                   # secrets: virt-reconcile/INSTANCE/KIND/NAME
LOCK_USAGE = "virt-reconcile-lock/"                # secrets: virt-reconcile-lock/INSTANCE
_RECORD_KEYS = ("kind", "name", "uuid", "instance", "hash", "commit", "dirty", "protect", "applied")
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
    """The owner marker element of an owner_context (written into guests' and networks' metadata)."""
    o = {key: escape(str(value)) for key, value in context.items()}
    return (f'<vr:owner xmlns:vr="{OWNER_NS}" instance="{o["instance"]}" hash="{o["hash"]}" commit="{o["commit"]}" '
            f'dirty="{"yes" if context["dirty"] else "no"}" protect="{"yes" if context["protect"] else "no"}" '
            f'applied="{o["applied"]}" tool="virt-reconcile/{__version__}">{o["record"]}</vr:owner>')


def with_marker(xml: str, context: dict) -> str:
    """A rendered guest or network definition with its owner marker in <metadata>, after <uuid>
    (inserted, not rendered again: each object is rendered once per run)."""
    head, sep, tail = xml.partition("</uuid>\n")
    if not sep:
        raise ValueError("a rendered definition without <uuid>")
    return f"{head}{sep}  <metadata>\n    {marker_xml(context)}\n  </metadata>\n{tail}"


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


def saved_hash(live) -> str | None:
    """The hash in the owner marker of a live object's saved definition, or None."""
    return live.marker.hash if live.marker else None


def restart_pending(live) -> bool:
    """A running guest whose live owner marker differs from its saved one runs an older definition."""
    return bool(live.active and live.live_xml) and owner_hash(live.live_root) != saved_hash(live)


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


def record_usage(instance: str, kind: str, name: str) -> str:
    return f"{RECORD_USAGE}{instance}/{kind}/{name}"


def record_secret(instance: str, kind: str, name: str, record: dict) -> str:
    """The secret that holds one pool's or volume's record (its UUID derived, so a redefine
    replaces it in place)."""
    entry = {key: record.get(key) for key in _RECORD_KEYS} | {"record": record.get("record", "{}")}
    return render("record.xml.j2", uuid=object_uuid(instance, "Record", f"{kind}/{name}"),
                  usage=record_usage(instance, kind, name),
                  description=json.dumps(entry, sort_keys=True, separators=(",", ":")))


def read_secret_record(xml) -> tuple[tuple[str, str], Record] | None:
    """(kind, name) and the record a record secret holds, or None when it holds none."""
    root = fields.parse(xml)
    try:
        entry = json.loads(root.findtext("description") or "")
        content = json.loads(entry.get("record") or "{}")
    except (ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or not entry.get("kind") or not entry.get("name"):
        return None
    rec = Record(str(entry.get("instance") or "default"), str(entry.get("hash") or ""), str(entry.get("commit") or ""),
                 bool(entry.get("dirty")), str(entry.get("applied") or ""), bool(entry.get("protect")),
                 content if isinstance(content, dict) else {}, entry.get("uuid"))
    return (str(entry["kind"]), str(entry["name"])), rec


def secret_records(state: HostState, instance: str | None = None) -> dict[tuple[str, str], Record]:
    """Records kept in secrets (of `instance`, or of every instance)."""
    out = {}
    for usage, root in state.secret_roots.items():
        parts = usage.split("/", 3)
        if not usage.startswith(RECORD_USAGE) or len(parts) != 4 or (instance and parts[1] != instance):
            continue
        found = read_secret_record(root)
        if found:
            out[found[0]] = found[1]
    return out


def legacy_records(state: HostState, instance: str) -> dict[tuple[str, str], Record]:
    """Records still in the instance's inventory domain (written by versions before 0.2)."""
    inventory = state.get("Guest", inventory_name(instance))
    return read_inventory(inventory.root if inventory else None)


def record_entry(kind: str, name: str, rec: Record) -> dict:
    """A record as the RECORD op writes it (to move a legacy record as it is)."""
    return {"kind": kind, "name": name, "uuid": rec.uuid, "instance": rec.instance, "hash": rec.hash,
            "commit": rec.commit, "dirty": rec.dirty, "protect": rec.protect, "applied": rec.applied,
            "record": json.dumps(rec.content, sort_keys=True, separators=(",", ":"))}


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
            rec = obj.marker
            if rec and rec.instance == instance and not is_internal(kind, name):
                out[(kind, name)] = rec
    kept = legacy_records(state, instance) | secret_records(state, instance)   # secrets win
    for (kind, name), rec in kept.items():
        live = state.get(kind, name)
        if kind in ("StoragePool", "Secret") and live is not None and live.uuid != rec.uuid:
            continue            # a pool or secret of the same name made by someone else: not ours
        out[(kind, name)] = rec  # a recorded object that is gone is reported as missing
    return out


def is_internal(kind: str, name: str) -> bool:
    """The tool's own helper objects (inventory and lock domains)."""
    return kind == "Guest" and name.startswith((INVENTORY_PREFIX, LOCK_PREFIX))
