"""The kind table: what each kind of object is, in one place (pure data).

The stages look a kind up here instead of branching on its name: its element declarations
(fields.py), its manifest model, libvirt's RelaxNG schema of it, where its ownership record lives,
how a change without a live rule reaches the running object, and what deleting it costs. The
functions of each stage (desired.BUILDERS, planners.PLANNERS, prune's ops) are keyed by the same
names, in KIND_ORDER, the order objects are created in."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import fields, models


@dataclass(frozen=True)
class Kind:
    name: str
    table: dict                 # element declarations (fields.TABLES)
    spec: type[BaseModel]       # the manifest model of its spec
    rng: str                    # libvirt's RelaxNG schema of its XML ('': no libvirt object)
    marker: bool                # its ownership record is a marker in its own <metadata> (else: inventory)
    not_live: str               # how a change without a live rule reaches the running object
    delete_impact: str          # what deleting it costs (plan impact)
    delete_keeps: str           # what deleting it leaves (said in the plan)


KINDS = {k.name: k for k in (
    Kind("Bridge", fields.BRIDGE, models.BridgeSpec, "", False,
         "changed live through netlink (a port carrying the host's management address: disruptive, with "
         "rollback)", "disruptive", "its ports are released"),
    Kind("Secret", fields.SECRET, models.SecretSpec, "secret.rng", False,
         "redefined in place, its value kept (ephemeral, or private to readable: defined again)", "destructive", "its value is lost"),
    Kind("Network", fields.NETWORK, models.NetworkSpec, "network.rng", True,
         "the network restarts", "disruptive", ""),
    Kind("StoragePool", fields.POOL, models.StoragePoolSpec, "storagepool.rng", False,
         "the pool restarts", "disruptive", "its directory and files are kept"),
    Kind("Volume", fields.VOLUME, models.VolumeSpec, "storagevol.rng", False,
         "capacity: resized in place (shrinking is destructive); format, backing, encryption: the volume is "
         "recreated (destructive); permissions: chmod/chown where the host is this machine",
         "destructive", "its data is deleted"),
    Kind("Guest", fields.DOMAIN, models.GuestSpec, "domain.rng", True,
         "at the guest's next restart", "disruptive", "its disks and TPM state are kept"),
)}
KIND_ORDER = tuple(KINDS)


def has_marker(kind: str) -> bool:
    """Objects of `kind` carry their owner marker in their own metadata (guests, networks)."""
    return KINDS[kind].marker
