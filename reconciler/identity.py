"""Identity that libvirt would otherwise invent: UUIDs, MACs, disk targets, the spec hash."""
from __future__ import annotations

import hashlib
import json
import uuid

OWNER_NS = "https://virt-reconcile.dev/xmlns/owner/1"
OWNER_PREFIX = "vr"
_UUID_NS = uuid.UUID("0b5e3c57-8a5f-4f6e-9d1e-7a3c2b9d4e10")
_TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}


def object_uuid(instance: str, kind: str, name: str) -> str:
    """The UUID a new object gets: stable across runs and machines (uuid5 of instance, kind, name)."""
    return str(uuid.uuid5(_UUID_NS, f"{instance}/{kind}/{name}"))


def derived_mac(guest_uuid: str, index: int) -> str:
    """A stable MAC in QEMU's 52:54:00 range for NIC `index` of a guest."""
    digest = hashlib.sha256(f"{guest_uuid}/{index}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def spec_hash(kind: str, name: str, values: dict) -> str:
    """Hash of what is applied: recorded in the owner marker, compared for pending restarts."""
    blob = json.dumps({"kind": kind, "name": name, "fields": values}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _letters(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(ord("a") + rem) + out
    return out


def disk_targets(buses: list[str], stated: list[str | None]) -> list[str]:
    """Targets for disks in order: a stated one is kept, others take the next free name on their bus."""
    used = {t for t in stated if t}
    out = []
    for bus, target in zip(buses, stated):
        if not target:
            prefix, n = _TARGET_PREFIX[bus], 0
            while f"{prefix}{_letters(n)}" in used:
                n += 1
            target = f"{prefix}{_letters(n)}"
            used.add(target)
        out.append(target)
    return out


def interface_macs(stated: list[str | None], live: list[str], guest_uuid: str) -> list[str]:
    """MACs for NICs in order: stated ones, else the live NIC's at the same position, else derived."""
    pinned = {m for m in stated if m}
    out = []
    for index, mac in enumerate(stated):
        if not mac:
            keep = live[index] if index < len(live) else None
            mac = keep if keep and keep not in pinned and keep not in out else derived_mac(guest_uuid, index)
        out.append(mac)
    return out
