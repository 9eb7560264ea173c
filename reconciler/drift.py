"""Drift classification (pure): what changed behind git's back, what git changed that is not applied.

Classes, per object of one host and instance:
  drift      owned, and the live object differs from what the tool last applied (its record)
  pending    git differs from what was applied (new, changed, or removed from the manifests)
  missing    owned (recorded) but gone from the host
  unmanaged  on the host, not owned by this instance (declared ones are reported here too)
  runtime    a guest not in the state the manifest asks, or running an older definition;
             a network or pool that is not active
  broken     declared, but libvirt returns XML for it that cannot be parsed
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import desired as desired_mod, escape, fields, ownership, secretref
from .diff import diff, flatten, get_path, running_diff
from .inventory import host_inventory, unreadable
from .live import HostState
from .manifest import Manifest

CLASSES = ("drift", "pending", "missing", "unmanaged", "runtime", "broken")


@dataclass
class Finding:
    host: str
    kind: str
    name: str
    klass: str
    reason: str
    changes: list[dict] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}/{self.kind}/{self.name}"

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["class"] = doc.pop("klass")
        return {"address": self.address, **doc}


def _changes(want, before: dict, after: dict, applied: dict | None = None, required=frozenset()) -> list[dict]:
    """Field changes (as manifest paths) from `before` to `after`."""
    return [{"path": want.manifest_path(c.parts), "before": c.before, "after": c.after}
            for c in diff(after, before, applied, required)]


def _runtime(host: str, kind: str, name: str, want, live, saved: dict) -> list[Finding]:
    """`saved`: the object's saved definition, read (fields.read)."""
    if kind == "Guest":
        state = "shutoff" if not live.active else "paused" if live.paused else "running"
        out = []
        if want.state != state:
            out.append(Finding(host, kind, name, "runtime", f"the guest is {state}; the manifest says {want.state}",
                               [{"path": "state", "before": state, "after": want.state}]))
        if live.active and ownership.restart_pending(live):
            out.append(Finding(host, kind, name, "runtime", "the running guest runs an older definition "
                               "(restart pending)"))
        elif live.active and live.live_xml is not None:
            running = [{"path": want.manifest_path(c.parts) + " (running)", "before": c.before, "after": c.after}
                       for c in running_diff(kind, saved, fields.read(kind, live.live_root))
                       if get_path(want.fields, c.parts) is not None]      # fields the manifest manages
            if running:
                out.append(Finding(host, kind, name, "runtime", "the running guest differs from its saved "
                                   "definition (changed live only; running -> saved)", running))
        return out
    if kind in ("Network", "StoragePool") and not live.active:
        return [Finding(host, kind, name, "runtime", "not active",
                        [{"path": "state", "before": "inactive", "after": "active"}])]
    return []


def _owned(host: str, item, want, live, rec, live_fields: dict) -> list[Finding]:
    kind, name = item.ref.kind, item.ref.name
    out = []
    applied = rec.content.get("autostart")
    recorded = secretref.as_applied(rec.fields, want.fields, live_fields)
    drifted = _changes(want, live_fields, recorded)     # before = live now, after = as applied
    if want.hash == rec.hash:                           # escape-hatch edits applied that no longer hold
        drifted += [{"path": want.manifest_path(c.parts), "before": c.before, "after": c.after}
                    for c in escape.changes(want.xml_edits, live.root)]
    if applied is not None and applied != live.autostart:
        drifted.append({"path": "autostart", "before": live.autostart, "after": applied})
    if drifted:
        out.append(Finding(host, kind, name, "drift", "changed on the host since it was applied"
                           f"{' from ' + rec.commit[:12] if rec.commit else ''} (live -> as applied)", drifted))
    if want.hash != rec.hash:
        out.append(Finding(host, kind, name, "pending", "the manifests changed since it was applied "
                           "(as applied -> manifests)",
                           _changes(want, recorded, want.fields, recorded, fields.REQUIRED[kind])))
    return out + _runtime(host, kind, name, want, live, live_fields)


def unmanaged_parts(kind: str, want, live, rec) -> list[str]:
    """What no manifest field manages in an owned object: repeated elements the manifest never
    stated (a disk added by hand) and elements no field declares. Reported, never drift."""
    managed = {k: {**(want.fields.get(k) or {}), **((rec.fields.get(k) or {}) if rec else {})}
               for k in want.fields if isinstance(want.fields.get(k), dict)}
    return fields.unmanaged_items(kind, live.values, managed, want.exclusive) \
        + fields.unmanaged(kind, live.root)


def classify(manifest: Manifest, host: str, state: HostState, ctx: desired_mod.Context,
             unmanaged: dict | None = None) -> list[Finding]:
    """Every finding for one host (empty: in sync); with `unmanaged`, also the unmanaged parts of
    each owned object (address -> parts)."""
    owned = ownership.records(state, ctx.instance)
    findings: list[Finding] = []
    declared = set()
    for item in manifest.for_host(host):
        key = (item.ref.kind, item.ref.name)
        declared.add(key)
        live, rec = state.get(*key), owned.get(key)
        if key in state.broken:
            findings.append(Finding(host, *key, "broken", f"{state.broken[key]}: repair or remove it with virsh"))
            continue
        want = desired_mod.build(item, manifest, state, ctx)
        if rec is not None and live is None and unreadable(state, *key):
            findings.append(Finding(host, *key, "runtime", "cannot be read: its pool is inactive"))
        elif rec is not None and live is None:
            findings.append(Finding(host, *key, "missing", "owned, but gone from the host"))
        elif rec is None and live is None:
            findings.append(Finding(host, *key, "pending", "in the manifests, not created yet",
                                    [{"path": want.manifest_path(p.split(".")), "before": None, "after": v}
                                     for p, v in flatten(want.fields)]))
        elif rec is None:
            findings.append(Finding(host, *key, "unmanaged", "declared, but the object on the host is not "
                                    "managed by this instance (adopt it)"))
        else:
            findings += _owned(host, item, want, live, rec, live.values)
            if unmanaged is not None:
                unmanaged[str(item.ref)] = unmanaged_parts(item.ref.kind, want, live, rec)
    for entry in host_inventory(state, ctx.instance):
        key = (entry.kind, entry.name)
        if key in declared:
            continue
        if entry.status == "managed":
            findings.append(Finding(host, *key, "pending", "removed from the manifests, still on the host "
                                    "(apply --prune deletes it unless it is protected)"))
        elif entry.status == "missing":
            findings.append(Finding(host, *key, "missing", "owned, gone from the host and from the manifests"))
        elif entry.status == "unmanaged":
            findings.append(Finding(host, *key, "unmanaged", "on the host, not managed (never touched)"))
        elif entry.status == "broken":
            findings.append(Finding(host, *key, "unmanaged", f"not in the manifests; {state.broken[key]}"))
    return findings


def counts(findings: list[Finding]) -> dict[str, int]:
    return {c: sum(f.klass == c for f in findings) for c in CLASSES}


def in_sync(findings: list[Finding]) -> bool:
    """Unmanaged objects alone do not make a host out of sync; they are reported."""
    return not any(f.klass != "unmanaged" for f in findings)
