"""Desired state of one object: identity resolved (from live where it exists), rendered, read back."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import fields
from .identity import disk_targets, interface_macs, object_uuid, spec_hash
from .live import HostState, LiveObject
from .manifest import Item, Manifest, Ref
from .render import render


@dataclass
class Desired:
    """What one object should be: its XML, its canonical fields and run-state wishes."""

    ref: Ref
    xml: str
    fields: dict
    hash: str
    autostart: bool | None = None
    state: str | None = None          # running | shutoff (guests); active (networks, pools)
    deps: list[str] = field(default_factory=list)
    parts: dict = field(default_factory=dict)   # per-device XML for hot-plug, keyed like fields
    observed: bool = True       # False: the live side could not be read (volume of an inactive pool)


def prune(values):
    """Drop what the manifest did not state (None) so it is never compared."""
    if isinstance(values, dict):
        out = {k: prune(v) for k, v in values.items() if v is not None}
        return {k: v for k, v in out.items() if v != {} or k in ("disks", "interfaces", "graphics", "dhcp_hosts")}
    return values


def _uuid(item: Item, live: LiveObject | None) -> str:
    return (fields.uuid_of(live.xml) if live else None) or object_uuid(item.ref.kind, item.ref.name)


def _first_render(template: str, item: Item, key: str, context: dict) -> dict:
    """Fields of the rendering before the owner marker's hash is known."""
    return fields.read(item.ref.kind, render(template, **{key: context | {"hash": ""}}))


def _final_render(template: str, item: Item, key: str, context: dict, compared: dict) -> tuple[str, str]:
    """The XML with the owner marker; its hash covers exactly the compared fields, so neither
    reformatting a manifest nor a name libvirt picked (bridge) looks like a new definition."""
    digest = spec_hash(item.ref.kind, item.ref.name, compared)
    return render(template, **{key: context | {"hash": digest}}), digest


def guest(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState) -> Desired:
    spec, host = item.spec, item.ref.host
    uuid = _uuid(item, live)
    buses = [d.bus or ("sata" if d.device == "cdrom" else "virtio") for d in spec.disks]
    targets = disk_targets(buses, [d.target for d in spec.disks])
    disks = []
    for disk, bus, target in zip(spec.disks, buses, targets):
        vol = manifest.get(host, "Volume", disk.volume) if disk.volume else None
        pool, _, volume = (disk.volume or "").partition("/")
        disks.append({"device": disk.device, "bus": bus, "target": target, "readonly": disk.device == "cdrom" if disk.readonly is None else disk.readonly,
                      "format": disk.format or (vol.spec.format if vol else "raw"),
                      "pool": pool, "volume": volume, "path": disk.path})
    live_macs = list(fields.read("Guest", live.xml)["interfaces"]) if live else []
    macs = interface_macs([n.mac for n in spec.interfaces], live_macs, uuid)
    nics = [{"network": n.network, "mac": mac, "model": n.model} for n, mac in zip(spec.interfaces, macs)]
    g = {
        "name": item.ref.name, "uuid": uuid,
        "type": spec.type or ("kvm" if "kvm" in state.domain_types else "qemu"),
        "memory_max_kib": -(-spec.memory.max // 1024),
        "memory_current_kib": -(-(spec.memory.current or spec.memory.max) // 1024),
        "vcpus_max": spec.vcpus.max, "vcpus_current": spec.vcpus.current or spec.vcpus.max,
        "machine": spec.machine, "cpu_mode": spec.cpu.mode if spec.cpu else None,
        "boot": spec.boot, "disks": disks, "interfaces": nics,
        "graphics": spec.graphics, "console": spec.console,
    }
    values = _first_render("domain.xml.j2", item, "g", g)
    if spec.type is None:
        values["type"] = None           # derived from the host: not a stated field
    compared = prune(values)
    xml, digest = _final_render("domain.xml.j2", item, "g", g, compared)
    deps = [str(Ref(host, "Network", n.network)) for n in spec.interfaces]
    deps += [str(Ref(host, "Volume", d.volume)) for d in spec.disks if d.volume]
    parts = {("disks", d["target"]): render("disk.xml.j2", d=d) for d in disks}
    parts |= {("interfaces", n["mac"]): render("interface.xml.j2", nic=n) for n in nics}
    return Desired(item.ref, xml, compared, digest, spec.autostart, spec.state, deps, parts)


def network(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState) -> Desired:
    spec = item.spec
    live_root = fields.parse(live.xml) if live else None
    carried_bridge = live_root.xpath("string(bridge/@name)") if live_root is not None else ""
    n = {
        "name": item.ref.name, "uuid": _uuid(item, live),
        "forward": spec.forward, "mtu": spec.mtu, "ipv4": spec.ipv4,
        "bridge": spec.bridge or (carried_bridge if spec.forward != "bridge" else None) or None,
        "mac": live_root.xpath("string(mac/@address)") if live_root is not None else None,
    }
    values = _first_render("network.xml.j2", item, "n", n)
    if not spec.bridge:
        values["bridge"] = None        # libvirt's pick, carried but not compared
    compared = prune(values)
    xml, digest = _final_render("network.xml.j2", item, "n", n, compared)
    hosts = spec.ipv4.dhcp.hosts if spec.ipv4 and spec.ipv4.dhcp else []
    parts = {("dhcp_hosts", h.mac): render("dhcp-host.xml.j2", h=h) for h in hosts}
    return Desired(item.ref, xml, compared, digest, spec.autostart, "active", [], parts)


def pool(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState) -> Desired:
    p = {"name": item.ref.name, "uuid": _uuid(item, live), "type": item.spec.type, "path": item.spec.path}
    xml = render("pool.xml.j2", p=p)
    values = fields.read("StoragePool", xml)
    return Desired(item.ref, xml, prune(values), spec_hash("StoragePool", item.ref.name, values),
                   item.spec.autostart, "active", [])


def volume(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState) -> Desired:
    spec = item.spec
    v = {"name": item.doc.metadata.name, "capacity": spec.capacity, "format": spec.format}
    xml = render("volume.xml.j2", v=v)
    deps = [str(Ref(item.ref.host, "StoragePool", spec.pool))]
    values = fields.read("Volume", xml)
    observed = state.get("StoragePool", spec.pool) is None or spec.pool in state.listed_pools
    return Desired(item.ref, xml, prune(values), spec_hash("Volume", item.ref.name, values), None, None, deps,
                   observed=observed)


BUILDERS = {"Guest": guest, "Network": network, "StoragePool": pool, "Volume": volume}


def build(item: Item, manifest: Manifest, state: HostState) -> Desired:
    """Desired state of `item`, carrying identity from what `state` holds for it."""
    live = state.get(item.ref.kind, item.ref.name)
    return BUILDERS[item.ref.kind](item, manifest, live, state)
