"""What observe() reads from a host: plain data, no libvirt objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from lxml import etree

from . import fields


@dataclass
class LiveObject:
    """One object as libvirt holds it: saved definition, running definition, run state."""

    kind: str
    name: str
    xml: str                      # the persistent (inactive) definition
    active: bool = False
    autostart: bool = False
    live_xml: str | None = None   # the running definition (domains that run)
    paused: bool = False          # a guest that runs but is paused

    @cached_property
    def root(self) -> etree._Element:
        """The saved definition, parsed once."""
        return fields.parse(self.xml)

    @cached_property
    def values(self) -> dict:
        """The saved definition's canonical fields (fields.read), read once: do not change them."""
        return fields.read(self.kind, self.root)

    @cached_property
    def uuid(self) -> str | None:
        """The saved definition's UUID (None: it has none, a volume)."""
        return fields.uuid_of(self.root)

    def release(self) -> None:
        """Drop the parsed definitions (a guest's takes ~45 KB); what was read from them stays,
        and they are parsed again when asked for."""
        self.__dict__.pop("root", None)
        self.__dict__.pop("live_root", None)

    @cached_property
    def marker(self):
        """The owner marker of the saved definition (guests, networks), read once, or None."""
        from .ownership import read_marker     # ownership builds on this module
        return read_marker(self.root)

    @cached_property
    def live_root(self) -> etree._Element | None:
        """The running definition, parsed once (None when the object does not run)."""
        return fields.parse(self.live_xml) if self.live_xml else None


@dataclass
class HostFacts:
    """What the host offers guests (from its capabilities)."""

    domain_types: set[str] = field(default_factory=set)      # kvm, qemu
    machines: dict[str, int] = field(default_factory=dict)  # machine type -> most vCPUs it takes
    memory_kib: int = 0     # the host's RAM (/proc/meminfo: NUMA cells under-report in some VMs)
    interfaces: dict[str, str] | None = None   # host interface -> its type (bridge, ethernet...); None: unknown


@dataclass
class HostState:
    """Everything read from one host in one pass."""

    host: str
    uri: str
    facts: HostFacts = field(default_factory=HostFacts)
    objects: dict[tuple[str, str], LiveObject] = field(default_factory=dict)
    listed_pools: set[str] = field(default_factory=set)   # pools whose volumes were listed
    broken: dict[tuple[str, str], str] = field(default_factory=dict)   # unreadable XML: why
    secrets: dict[str, str] = field(default_factory=dict)   # the tool's records and locks: usage -> XML
    links: dict | None = None       # the host's network links (hostlinks.Link by name), when Bridges are read
    mgmt: set[str] = field(default_factory=set)   # the links carrying the connection to the host

    @property
    def domain_types(self) -> set[str]:
        return self.facts.domain_types

    def get(self, kind: str, name: str) -> LiveObject | None:
        return self.objects.get((kind, name))

    @cached_property
    def secret_roots(self) -> dict[str, etree._Element]:
        """The tool's secrets, parsed once (one that is not well-formed is not the tool's: left out)."""
        out = {}
        for usage, xml in self.secrets.items():
            try:
                out[usage] = fields.parse(xml)
            except etree.XMLSyntaxError:
                continue
        return out


def capabilities(xml: str) -> HostFacts:
    """HostFacts from libvirt's capabilities XML (x86_64 hvm guests)."""
    root = fields.parse(xml)
    facts = HostFacts()
    for arch in root.xpath("guest[os_type='hvm']/arch[@name='x86_64']"):
        facts.domain_types |= set(arch.xpath("domain/@type"))
        for machine in arch.xpath("machine | domain/machine"):
            facts.machines[fields.text(machine)] = int(machine.get("maxCpus") or 1)
    return facts


def sort_out_broken(state: HostState) -> HostState:
    """Move objects whose XML libvirt returned malformed from `objects` to `broken` (with why), so
    every later step reads only parseable XML; the rest of the host is not affected."""
    for key, obj in list(state.objects.items()):
        try:
            obj.live_root, obj.uuid, obj.marker    # noqa: B018  (parse now; keep what every plan reads)
        except etree.XMLSyntaxError as exc:
            del state.objects[key]
            state.broken[key] = f"libvirt returned XML that is not well-formed ({exc.msg})"
        else:
            obj.release()               # a host's objects are not all held parsed at once
    return state
