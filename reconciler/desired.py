"""Desired state of one object: identity resolved (from live where it exists), rendered, read back."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import SimpleNamespace

from . import escape, fields, models, secretref
from .identity import disk_targets, interface_macs, object_uuid, spec_hash
from .live import HostState, LiveObject
from .manifest import Item, Manifest, Ref
from .kinds import has_marker
from .ownership import Provenance, marker_xml, owner_context, with_marker
from .render import render


@dataclass
class Context:
    """What every object of one host shares in a run: the instance and the manifests' origin."""

    instance: str = "default"
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class Desired:
    """What one object should be: its XML, its canonical fields, run-state wishes and its record."""

    ref: Ref
    xml: str
    fields: dict
    hash: str
    autostart: bool | None = None
    state: str | None = None          # running | shutoff (guests); active (networks, pools)
    deps: list[str] = field(default_factory=list)
    parts: dict = field(default_factory=dict)   # XML of each keyed element (hot-plug, edits), keyed like fields
    observed: bool = True       # False: the live side could not be read (volume of an inactive pool)
    owner: dict = field(default_factory=dict)   # the ownership record to write (owner_context)
    uuid: str | None = None
    exclusive: tuple = ()       # keyed collections the manifest states in full (Guest spec.exclusive)
    index: dict = field(default_factory=dict)   # (collection, key) -> position in the manifest's list
    xml_edits: list = field(default_factory=list)   # the escape hatch's edits (escape.py), as the manifest has them
    value: str | None = None          # a Secret's value, as a secretref token (None: not managed)
    value_digest: str | None = None   # ... and what its record keeps of it (value_digest)
    make: dict = field(default_factory=dict)    # how apply makes a pool or volume (its steps' arguments)
    seed: dict = field(default_factory=dict)    # a cloud-init seed volume: its documents' digests (seed.digests)

    def manifest_path(self, parts) -> str:
        """A field's path as the manifest writes it (fields.manifest_path)."""
        return fields.manifest_path(self.ref.kind, parts, self.index)

    @property
    def marker(self) -> str:
        return marker_xml(self.owner)


class Parts(dict):
    """The XML of each keyed element of a guest (hot-plug, edits), rendered when first asked
    for: a plan that changes no element renders none."""

    def __init__(self, makers: dict):
        super().__init__()
        self.makers = makers      # key -> (template, its variable, the element)

    def get(self, key, default=None):
        if key not in self and key in self.makers:
            template, var, element = self.makers[key]
            self[key] = render(template, **{var: element}).strip()
        return super().get(key, default)


_COLLECTIONS = {name for table in fields.TABLES.values() for name, spec in table.items()
                if isinstance(spec, fields.Items)}
_STATED_WHOLE = ("disks", "interfaces", "graphics", "dhcp_hosts")    # spec.exclusive needs them, even empty


def prune(values, items: bool = False):
    """Drop what the manifest did not state (None) so it is never compared; the items of a keyed
    collection stay even when they hold no field (a sound card is its model alone)."""
    if isinstance(values, dict):
        out = {k: prune(v, k in _COLLECTIONS) for k, v in values.items() if v is not None}
        return {k: v for k, v in out.items() if v != {} or items or k in _STATED_WHOLE}
    return values


def _uuid(item: Item, live: LiveObject | None, ctx: Context) -> str:
    return (live.uuid if live else None) or object_uuid(ctx.instance, item.ref.kind, item.ref.name)


def _only(values: dict, stated: dict) -> dict:
    """The part of `values` whose keys `stated` holds (a group the manifest states in part)."""
    return {k: _only(v, stated[k]) if isinstance(v, dict) and isinstance(stated[k], dict) else v
            for k, v in values.items() if k in stated}


def _rendered(template: str, key: str, context: dict, item: Item, ctx: Context,
              unstated: tuple = (), stated: dict | None = None,
              unstated_in: dict | None = None, extra: dict | None = None) -> tuple[str, dict, dict]:
    """Render once, read the fields back, then add the owner marker (guests, networks).

    The marker's hash covers exactly the compared fields, autostart and protection, so neither
    reformatting a manifest nor a name libvirt picked (bridge) looks like a new definition."""
    xml = render(template, **{key: context})
    values = fields.read(item.ref.kind, xml)
    for name in unstated:
        values[name] = None
    for name, part in (stated or {}).items():     # groups stated in part: only what they state
        values[name] = _only(values[name], part)
    for (collection, item_key), names in (unstated_in or {}).items():   # item fields the manifest leaves out
        for name in names:
            values[collection].get(item_key, {}).pop(name, None)
    compared = prune(values)
    spec = item.spec
    content = {"fields": secretref.stable(compared), "autostart": getattr(spec, "autostart", None),
               "protect": spec.protect} | (extra or {})
    owner = owner_context(ctx.instance, spec_hash(item.ref.kind, item.ref.name, content), content,
                          ctx.provenance, spec.protect)
    return (with_marker(xml, owner) if has_marker(item.ref.kind) else xml), compared, owner


def _secret_deps(manifest: Manifest, host: str, usages: list[str | None]) -> list[str]:
    """The declared Secrets that logins name (by usage): created before their users."""
    return [str(Ref(host, "Secret", u)) for u in sorted(set(usages) - {None}) if manifest.get(host, "Secret", u)]


def secret_uuid(manifest: Manifest, state: HostState, ctx: Context, host: str, name: str) -> str:
    """The UUID of Secret `name`: as the host has it, else the one its create will give it (a
    UUID given in its place, as adopt writes one, is taken as it is)."""
    live = state.get("Secret", name)
    if live is not None:
        return live.uuid
    if manifest.get(host, "Secret", name) is None and fields.is_uuid(name):
        return name
    return object_uuid(ctx.instance, "Secret", name)


def _luks_secret(vol: Item | None, state: HostState, ctx: Context) -> str | None:
    """The UUID of an encrypted volume's secret: as the live volume names it, else the one its
    create will make (desired.volume)."""
    if vol is None or vol.spec.encryption is None:
        return None
    live = state.get("Volume", vol.ref.name)
    return (live.root.xpath("string(target/encryption/secret/@uuid)") if live else "") or \
        object_uuid(ctx.instance, "VolumeSecret", vol.ref.name)


def guest(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    spec, host = item.spec, item.ref.host
    uuid = _uuid(item, live, ctx)
    buses = [d.bus or {"cdrom": "sata", "floppy": "fdc"}.get(d.device, "virtio") for d in spec.disks]
    targets = disk_targets(buses, [d.target for d in spec.disks])
    disks = []
    for disk, bus, target in zip(spec.disks, buses, targets):
        vol = manifest.get(host, "Volume", disk.volume) if disk.volume else None
        pool, _, volume = (disk.volume or "").partition("/")
        readonly = disk.device == "cdrom" if disk.readonly is None else disk.readonly
        disks.append({"device": disk.device, "bus": bus, "target": target, "readonly": readonly,
                      "format": disk.format or (vol.spec.format if vol else "raw"),
                      "pool": pool, "volume": volume, "path": disk.path, "cache": disk.cache, "io": disk.io,
                      "discard": disk.discard, "detect_zeroes": disk.detect_zeroes, "serial": disk.serial,
                      "boot_order": disk.boot_order, "block": disk.block, "network": disk.network,
                      "wwn": disk.wwn.lower() if disk.wwn else None, "shareable": disk.shareable,
                      "iothread": disk.iothread, "luks_secret": _luks_secret(vol, state, ctx)})
    tpm = spec.tpm and SimpleNamespace(**spec.tpm.model_dump(), secret_uuid=secret_uuid(
        manifest, state, ctx, host, spec.tpm.secret) if spec.tpm.secret else None)
    live_macs = list(live.values["interfaces"]) if live else []
    macs = interface_macs([n.mac for n in spec.interfaces], live_macs, uuid)
    nics = [{"network": n.network, "bridge": n.bridge, "direct": n.direct, "mac": mac, "model": n.model,
             "mtu": n.mtu, "queues": n.queues, "link": n.link, "boot_order": n.boot_order, "hostdev": n.hostdev,
             "portgroup": n.portgroup, "vlan": n.vlan, "bandwidth": n.bandwidth}
            for n, mac in zip(spec.interfaces, macs)]
    g = {
        "name": item.ref.name, "uuid": uuid,
        "type": spec.type or ("kvm" if "kvm" in state.domain_types else "qemu"),
        "memory_max_kib": -(-spec.memory.max // 1024),
        "memory_current_kib": -(-(spec.memory.max if spec.memory.current is None else spec.memory.current) // 1024),
        "vcpus_max": spec.vcpus.max,
        "vcpus_current": spec.vcpus.max if spec.vcpus.current is None else spec.vcpus.current,
        "machine": spec.machine, "cpu": spec.cpu, "cputune": spec.cputune,
        "balloon": spec.balloon, "panic": spec.panic, "iothreads": spec.iothreads, "hostdevs": spec.hostdevs,
        "controllers": spec.controllers, "hotplug_slots": spec.hotplug_slots, "memory_hotplug": spec.memory.hotplug,
        "boot": spec.boot_list, "disks": disks, "interfaces": nics,
        "graphics": spec.graphics, "console": spec.pty_console, "serials": spec.serials, "firmware": spec.firmware,
        "secure_boot": spec.secure_boot, "tpm": tpm, "guest_agent": spec.guest_agent, "rng": spec.rng,
        "watchdog": spec.watchdog, "memory_backing": spec.memory_backing, "filesystems": spec.filesystems,
        "features": spec.features, "clock": spec.clock, "on_poweroff": spec.on_poweroff,
        "boot_menu": spec.boot_menu, "kernel": spec.kernel, "initrd": spec.initrd, "cmdline": spec.cmdline,
        "on_reboot": spec.on_reboot, "on_crash": spec.on_crash, "video": spec.video, "inputs": spec.inputs,
        "sound": spec.sound, "usb_redirect": spec.usb_redirect, "spice_agent": spec.spice_agent,
        "enrolled_keys": spec.secure_boot if spec.enrolled_keys is None else spec.enrolled_keys,
    }
    # the domain type follows the host unless stated, so it is not compared then; nor are the
    # firmware fields left out (an adopted UEFI guest stays UEFI)
    unstated = tuple(name for name in ("type", "firmware", "secure_boot", "enrolled_keys", "guest_agent", "features",
                                       "on_poweroff", "on_reboot", "on_crash", "boot_menu", "kernel", "initrd",
                                       "cmdline", "usb_redirect", "spice_agent", "balloon", "memory_backing",
                                       "hotplug_slots")
                     if getattr(spec, name) is None)
    unstated += () if spec.clock and spec.clock.offset else ("clock_offset",)
    stated = {name: getattr(spec, name).model_dump(exclude_none=True)
              for name in ("features", "memory_backing") if getattr(spec, name)}
    # serial ports: only those stated (the console field renders port 0 too) and what they state
    stated["serials"] = {str(s.port): s.model_dump(exclude_none=True) for s in spec.serials}
    unstated_in = {("disks", d["target"]): ("shareable",) for d in disks if d["shareable"] is None}
    edits = [e.model_dump(exclude_none=True) for e in spec.xml]
    xml, compared, owner = _rendered("domain.xml.j2", "g", g, item, ctx, unstated, stated, unstated_in,
                                     {"xml": edits} if edits else None)
    xml = escape.apply_all(xml, edits)
    deps = [str(Ref(host, "Network", n.network)) for n in spec.interfaces if n.network]
    deps += [str(Ref(host, "Bridge", n.bridge)) for n in spec.interfaces if n.bridge and manifest.get(host, "Bridge", n.bridge)]
    deps += [str(Ref(host, "Volume", d.volume)) for d in spec.disks if d.volume]
    deps += _secret_deps(manifest, host, [d.network.auth.secret_usage for d in spec.disks
                                          if d.network and d.network.auth] + [spec.tpm and spec.tpm.secret])
    cpu_features, numa = (spec.cpu.features, spec.cpu.numa) if spec.cpu else ([], [])
    # keyed elements the manifest lists: (collection, items, key, template, its variable, indexed:
    # named by their position in the manifest's list)
    listed = [
        ("disks", disks, lambda d: d["target"], "disk.xml.j2", "d", True),
        ("interfaces", nics, lambda n: n["mac"], "interface.xml.j2", "nic", True),
        ("inputs", spec.inputs, lambda i: i.type, "input.xml.j2", "input", True),
        ("serials", spec.serials, lambda s: str(s.port), "serial.xml.j2", "s", True),
        ("hostdevs", spec.hostdevs, lambda h: h.key, "hostdev.xml.j2", "h", True),
        ("controllers", spec.controllers, lambda c: f"{c.type}:{c.index}", "controller.xml.j2", "c", True),
        ("cpu_features", cpu_features, lambda f: f.name, "cpu-feature.xml.j2", "f", True),
        ("numa_cells", numa, lambda c: str(c.id), "numa-cell.xml.j2", "cell", True),
        ("vcpupin", spec.cputune.vcpupin if spec.cputune else [], lambda p: str(p.vcpu), "vcpupin.xml.j2", "pin", True),
        ("filesystems", spec.filesystems, lambda fs: fs.target, "filesystem.xml.j2", "fs", False),
        ("clock_timers", spec.clock.timers if spec.clock else [], lambda t: t.name, "timer.xml.j2", "t", False),
    ]
    # single keyed elements: (collection, the element, its key field, template, its variable)
    single = [("graphics", spec.graphics, "type", "graphics.xml.j2", "gr"),
              ("video", spec.video, "model", "video.xml.j2", "video"),
              ("sound", spec.sound, "model", "sound.xml.j2", "sound"),
              ("panic", spec.panic, "model", "panic.xml.j2", "panic"),
              ("tpm", tpm, "model", "tpm.xml.j2", "tpm"),
              ("rng", spec.rng, "model", "rng.xml.j2", "rng"),
              ("watchdog", spec.watchdog, "model", "watchdog.xml.j2", "wd")]
    makers, index = {}, {}
    for name, items, key, template, var, indexed in listed:
        for n, element in enumerate(items):
            makers[(name, key(element))] = (template, var, element)
            if indexed:
                index[(name, key(element))] = n
    for name, element, key_field, template, var in single:
        if element is not None:
            makers[(name, getattr(element, key_field))] = (template, var, element)
    parts = Parts(makers)
    return Desired(item.ref, xml, compared, owner["hash"], spec.autostart, spec.state, deps, parts,
                   owner=owner, uuid=uuid, exclusive=tuple(spec.exclusive), index=index, xml_edits=edits)


_NETWORK_OPTIONAL = ("forward_dev", "nat", "interfaces", "pf", "routes", "bandwidth", "virtualport")


def network(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    spec = item.spec
    live_root = live.root if live else None
    carried_bridge = live_root.xpath("string(bridge/@name)") if live_root is not None else ""
    n = {
        "name": item.ref.name, "uuid": _uuid(item, live, ctx),
        "forward": spec.forward, "mtu": spec.mtu, "ipv4": spec.ipv4, "ipv6": spec.ipv6, "dns": spec.dns,
        "bridge": spec.bridge or (carried_bridge if spec.forward not in models.MACVTAP + ("hostdev",) else None) or None,
        "mac": live_root.xpath("string(mac/@address)") if live_root is not None else None,
        "forward_dev": spec.forward_dev, "nat": spec.nat, "interfaces": spec.interfaces, "pf": spec.pf,
        "routes": spec.routes, "portgroups": spec.portgroups, "bandwidth": spec.bandwidth,
        "virtualport": spec.virtualport,
    }
    # an unstated bridge name is libvirt's pick: carried over, never compared; IPv6, DNS and the
    # other optional parts are managed only when stated
    unstated = (() if spec.bridge else ("bridge",)) + (() if spec.ipv6 else ("ipv6", "dhcp6_range"))
    unstated += ("dns_domain", "dns_forwarders") if spec.dns is None else ()
    unstated += tuple(name for name in _NETWORK_OPTIONAL if name not in spec.model_fields_set)
    dhcp = spec.ipv4.dhcp if spec.ipv4 else None
    unstated += () if spec.ipv4 and "more_addresses" in spec.ipv4.model_fields_set else ("ipv4_more",)
    unstated += tuple(name for name, field in (("dhcp_ranges", "ranges"), ("bootp_file", "bootp"),
                                               ("bootp_server", "bootp"))
                      if dhcp is None or field not in dhcp.model_fields_set)
    stated = {"bandwidth": spec.bandwidth.model_dump(exclude_none=True)} if spec.bandwidth else {}
    xml, compared, owner = _rendered("network.xml.j2", "n", n, item, ctx, unstated, stated)
    hosts = dhcp.hosts if dhcp else []
    dns = spec.dns
    parts = {("dhcp_hosts", h.mac): render("dhcp-host.xml.j2", h=h) for h in hosts}
    parts |= {("dns_hosts", fields.ip_key(h.ip)): render("dns-host.xml.j2", h=h) for h in (dns.hosts if dns else [])}
    parts |= {("dns_txt", t.name.replace(".", "_")): render("dns-txt.xml.j2", t=t) for t in (dns.txt if dns else [])}
    parts |= {("dns_srv", f"{r.service}_{r.protocol}"): render("dns-srv.xml.j2", s=r) for r in (dns.srv if dns else [])}
    parts |= {("portgroups", pg.name): render("portgroup.xml.j2", pg=pg).strip() for pg in spec.portgroups}
    hosts6 = spec.ipv6.dhcp.hosts if spec.ipv6 and spec.ipv6.dhcp else []
    parts |= {("dhcp6_hosts", fields.ip_key(h.ip)): render("dhcp6-host.xml.j2", h=h) for h in hosts6}
    declared = hosts[:item.declared_hosts] if item.declared_hosts is not None else hosts   # guests' leases: by MAC
    index = {("dhcp_hosts", h.mac): i for i, h in enumerate(declared)}
    index |= {("dns_hosts", fields.ip_key(h.ip)): i for i, h in enumerate(dns.hosts if dns else [])}
    index |= {("dns_txt", t.name.replace(".", "_")): i for i, t in enumerate(dns.txt if dns else [])}
    index |= {("dns_srv", f"{r.service}_{r.protocol}"): i for i, r in enumerate(dns.srv if dns else [])}
    index |= {("portgroups", pg.name): i for i, pg in enumerate(spec.portgroups)}
    index |= {("dhcp6_hosts", fields.ip_key(h.ip)): i for i, h in enumerate(hosts6)}
    deps = [str(Ref(item.ref.host, "Bridge", spec.bridge))] if spec.forward == "bridge" and spec.bridge and \
        manifest.get(item.ref.host, "Bridge", spec.bridge) else []
    return Desired(item.ref, xml, compared, owner["hash"], spec.autostart, "active", deps, parts,
                   owner=owner, uuid=n["uuid"], index=index)


def _pool_path(spec, vg: str | None) -> str | None:
    """The pool's target path: stated, or its type's default (logical: /dev/VG)."""
    default = models.POOL_SHAPES[spec.type][2]
    if spec.path is not None or default in (None, "dir"):
        return spec.path
    return default.format(vg=vg)


def pool(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    spec = item.spec
    source = spec.source or models.PoolSource()
    vg = (source.name or item.ref.name) if spec.type == "logical" else None
    path = _pool_path(spec, vg)
    p = {"name": item.ref.name, "uuid": _uuid(item, live, ctx), "type": spec.type, "path": path, "vg": vg,
         "source": source if spec.source or vg else None, "permissions": spec.permissions}
    stated_source = source.model_dump(exclude_none=True, exclude_defaults=True)
    stated_source |= {"name": vg} if vg else {}
    stated = {"source": stated_source}
    stated |= {"permissions": spec.permissions.model_dump(exclude_none=True)} if spec.permissions else {}
    unstated = (() if spec.permissions else ("permissions",)) + (() if path else ("path",))
    xml, compared, owner = _rendered("pool.xml.j2", "p", p, item, ctx, unstated, stated)
    fmt = source.format
    device = spec.type in models.DEVICE_POOLS and not (spec.type == "fs" and fmt in (None, "auto"))
    return Desired(item.ref, xml, compared, owner["hash"], spec.autostart, "active", _secret_deps(
        manifest, item.ref.host, [source.auth.secret if source.auth else None]), owner=owner, uuid=p["uuid"],
        make={"device": device, "overwrite": spec.overwrite})


def _vg(pool: Item) -> str | None:
    return ((pool.spec.source and pool.spec.source.name) or pool.ref.name) if pool.spec.type == "logical" else None


def volume_path(manifest: Manifest, host: str, ref: str) -> str:
    """The file or device path of declared volume `ref` (pool/volume): its pool's target path and
    its name (manifest.py checks the pool is declared)."""
    pool_name, _, name = ref.partition("/")
    pool = manifest.get(host, "StoragePool", pool_name)
    return f"{(_pool_path(pool.spec, _vg(pool)) or '').rstrip('/')}/{name}"


def _backing(item: Item, manifest: Manifest) -> dict:
    """The file and format of the declared volume an overlay sits on (manifest.py checks it is)."""
    base = manifest.get(item.ref.host, "Volume", item.spec.backing)
    return {"backing": volume_path(manifest, item.ref.host, item.spec.backing), "backing_format": base.spec.format}


def volume(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    spec, host = item.spec, item.ref.host
    path = volume_path(manifest, host, item.ref.name)
    enc = spec.encryption
    secret_uuid = _luks_secret(item, state, ctx)
    # a cloud-init seed: its documents (the plan carries them, apply makes the ISO) and the ISO's size
    docs, digests, capacity = None, {}, spec.capacity
    if spec.cloud_init:
        from . import seed      # pycdlib: only for cloud-init seeds
        docs = seed.documents(spec.cloud_init, item.ref.name)
        digests, capacity = (seed.digests(docs), seed.size(docs)) if docs else ({}, spec.capacity)
    v = {"name": item.doc.metadata.name, "capacity": capacity, "format": spec.format, "backing": None,
         "allocation": None if spec.full else 0,    # left out: all of it (qcow2: with PREALLOC_METADATA)
         "permissions": spec.permissions, "secret_uuid": secret_uuid}
    v |= _backing(item, manifest) if spec.backing else {}
    passphrase = value_digest(enc.passphrase.read(), secret_uuid) if enc else None
    stated = {"permissions": spec.permissions.model_dump(exclude_none=True)} if spec.permissions else None
    unstated = () if spec.permissions else ("permissions",)
    made = {"allocation": spec.allocation, "clone": spec.clone,
            "source": spec.source.model_dump(exclude_none=True) if spec.source else None}
    made = {k: v for k, v in made.items() if v is not None}      # what acts when it is created
    extra = ({"made": made} if made else {}) | ({"passphrase": passphrase} if passphrase else {})
    extra |= {"seed": digests} if digests else {}
    xml, compared, owner = _rendered("volume.xml.j2", "v", v, item, ctx, unstated, stated, extra=extra)
    deps = [str(Ref(host, "StoragePool", spec.pool))]
    deps += [str(Ref(host, "Volume", ref)) for ref in (spec.backing, spec.clone) if ref and manifest.get(host, "Volume", ref)]
    observed = state.get("StoragePool", spec.pool) is None or spec.pool in state.listed_pools
    make: dict = {"prealloc": spec.format == "qcow2" and spec.allocation in ("metadata", "full")}
    if spec.source:
        make["image"] = spec.source.model_dump(exclude_none=True)
        make["capacity"] = spec.capacity
    if spec.clone:
        make["clone"] = dict(zip(("pool", "volume"), spec.clone.split("/", 1)))
        make["capacity"] = spec.capacity
    if docs:
        make["seed"] = docs
        make["capacity"] = capacity
    if enc:
        make["secret"] = {"xml": render("volume-secret.xml.j2", uuid=secret_uuid, path=path, name=item.ref.name),
                          "usage": path, "value": enc.passphrase.token}
    return Desired(item.ref, xml, compared, owner["hash"], None, None, deps, observed=observed, owner=owner,
                   make=make, value_digest=passphrase, seed=digests)


def value_digest(value: str, uuid: str) -> str:
    """What a Secret's record keeps of its value: a salted scrypt hash (salt: the secret's UUID),
    so a plan sees that the value changed without the value being kept anywhere."""
    return "scrypt:" + hashlib.scrypt(value.encode(), salt=uuid.encode(), n=2**14, r=8, p=1, dklen=16).hex()


def secret(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    spec = item.spec
    s = {"name": item.ref.name, "uuid": _uuid(item, live, ctx), "usage": spec.usage,
         "usage_tag": fields.USAGE_ID[spec.usage], "description": spec.description,
         "private": spec.private, "ephemeral": spec.ephemeral}
    unstated = tuple(name for name in ("description", "private", "ephemeral") if getattr(spec, name) is None)
    value = spec.value.read() if spec.value else None
    extra = {"value": value_digest(value, s["uuid"])} if value is not None else None
    xml, compared, owner = _rendered("secret.xml.j2", "s", s, item, ctx, unstated, extra=extra)
    return Desired(item.ref, xml, compared, owner["hash"], None, None, [], owner=owner, uuid=s["uuid"],
                   value=spec.value.token if spec.value else None,
                   value_digest=extra["value"] if extra else None)


def bridge_config(item: Item, instance: str) -> netconfig.BridgeConfig:
    """What the host's network configuration keeps of a Bridge (netconfig's contract)."""
    from . import netconfig
    spec = item.spec
    return netconfig.BridgeConfig(
        item.ref.name, tuple(spec.ports), spec.stp, spec.forward_delay, spec.mtu, spec.vlan_filtering,
        "dhcp" if spec.dhcp else "static" if spec.addresses else "none", tuple(str(a) for a in spec.addresses),
        str(spec.gateway) if spec.gateway else None, str(spec.gateway6) if spec.gateway6 else None,
        tuple(str(d) for d in spec.dns), spec.mac_from, instance)


def bridge_files(item: Item, backend: str, instance: str, links: dict | None = None) -> dict[str, tuple[str, int]]:
    """The configuration files `backend` keeps the Bridge in (a port's MAC read from `links`)."""
    config = bridge_config(item, instance)
    macs = {name: link.mac for name, link in (links or {}).items()}
    macs |= {p: macs.get(p) or "00:00:00:00:00:00" for p in config.ports}      # paths only, when not read
    from . import netconfig
    return netconfig.files(backend, config, macs)


def bridge(item: Item, manifest: Manifest, live: LiveObject | None, state: HostState, ctx: Context) -> Desired:
    from . import hostbridge
    spec, host = item.spec, item.ref.host
    backend = manifest.hosts[host].spec.network_config
    files = bridge_files(item, backend, ctx.instance, state.links)
    persisted = hostbridge.digest({path: text for path, (text, _) in files.items()}) if files else None
    b = {"name": item.ref.name, "ports": spec.ports, "stp": spec.stp, "forward_delay": spec.forward_delay,
         "mtu": spec.mtu, "vlan_filtering": spec.vlan_filtering, "addresses": [str(a) for a in spec.addresses],
         "gateway": spec.gateway, "gateway6": spec.gateway6, "persisted": persisted}
    unstated = tuple(name for name in ("forward_delay", "mtu", "vlan_filtering") if getattr(spec, name) is None)
    unstated += tuple(name for name in ("ports", "addresses", "gateway", "gateway6")
                      if name not in spec.model_fields_set or (name == "addresses" and spec.dhcp))
    unstated += () if persisted else ("persisted",)
    xml, compared, owner = _rendered("bridge.xml.j2", "b", b, item, ctx, unstated, extra={"files": sorted(files)})
    want = {"name": item.ref.name, "stp": spec.stp, "forward_delay": spec.forward_delay, "mtu": spec.mtu,
            "vlan_filtering": spec.vlan_filtering, "mac_from": spec.mac_from}
    want |= {name: compared[name] for name in ("ports", "addresses") if name in compared}
    want |= {name: (str(getattr(spec, name)) if getattr(spec, name) else None)
             for name in ("gateway", "gateway6") if name in spec.model_fields_set}
    probe = next((link.gateways["ipv4"] for name, link in sorted((state.links or {}).items())
                  if name in state.mgmt and "ipv4" in link.gateways), None)
    make = {"want": want, "files": {path: [text, mode] for path, (text, mode) in files.items()},
            "backend": backend, "mgmt": sorted(state.mgmt), "probe": probe}
    return Desired(item.ref, xml, compared, owner["hash"], None, "active", [], owner=owner, make=make)


BUILDERS = {"Bridge": bridge, "Secret": secret, "Guest": guest, "Network": network, "StoragePool": pool, "Volume": volume}


def build(item: Item, manifest: Manifest, state: HostState, ctx: Context | None = None) -> Desired:
    """Desired state of `item`, carrying identity from what `state` holds for it."""
    live = state.get(item.ref.kind, item.ref.name)
    return BUILDERS[item.ref.kind](item, manifest, live, state, ctx or Context())
