"""What observe() reads from a host: plain data, no libvirt objects."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LiveObject:
    """One object as libvirt holds it: saved definition, running definition, run state."""

    kind: str
    name: str
    xml: str                      # the persistent (inactive) definition
    active: bool = False
    autostart: bool = False
    live_xml: str | None = None   # the running definition (domains that run)


@dataclass
class HostState:
    """Everything read from one host in one pass."""

    host: str
    uri: str
    domain_types: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str], LiveObject] = field(default_factory=dict)
    listed_pools: set[str] = field(default_factory=set)   # pools whose volumes were listed

    def get(self, kind: str, name: str) -> LiveObject | None:
        return self.objects.get((kind, name))
