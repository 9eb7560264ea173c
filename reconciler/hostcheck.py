"""What a host will refuse, found at plan time from what was read (no libvirt calls), so apply
does not stop halfway.

Validation knows libvirt's own limits; these depend on the host: the domain types and machine
types it offers (with their vCPU limits), its memory, the free space of its pools, the host
bridges networks name. On a host that is this machine, files are checked too: disk images and
media are readable, pool directories can be created, and guests that will start have their
firmware (loader, NVRAM template, firmware descriptors for `firmware='efi'`) and swtpm for an
emulated TPM. A remote host's files cannot be seen through libvirt's read-only API: there
these checks are left to libvirt at apply."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import fields, hostnet, netconfig
from .errors import Diagnostic
from .live import HostState
from .manifest import Item
from .units import human_size


def _diag(item: Item, path: tuple, message: str) -> Diagnostic:
    return item.source.diagnostic(path, message)


def _guest(item: Item, state: HostState, secrets: set[str]) -> list[Diagnostic]:
    spec, facts, out = item.spec, state.facts, []
    where = f"host {state.host!r}"
    if spec.type and spec.type not in facts.domain_types:
        offered = ", ".join(sorted(facts.domain_types)) or "none"
        out.append(_diag(item, ("spec", "type"), f"{where} offers no {spec.type!r} guests (it offers: {offered})"))
    if facts.machines and spec.machine not in facts.machines:
        newest = sorted((m for m in facts.machines if m.startswith(("pc-q35-", "pc-i440fx-"))), reverse=True)[:4]
        known = ", ".join(["q35", "pc"] + newest)
        out.append(_diag(item, ("spec", "machine"), f"{where} has no machine type {spec.machine!r} (e.g. {known})"))
    elif spec.machine in facts.machines and spec.vcpus.max > facts.machines[spec.machine]:
        out.append(_diag(item, ("spec", "vcpus"), f"machine type {spec.machine!r} takes at most "
                                                  f"{facts.machines[spec.machine]} vCPUs on {where}"))
    secret = spec.tpm.secret if spec.tpm else None
    if secret and not fields.is_uuid(secret) and state.get("Secret", secret) is None and secret not in secrets:
        out.append(_diag(item, ("spec", "tpm", "secret"), f"no Secret {secret!r} is declared or on {where}"))
    live = state.get("Guest", item.ref.name)
    starts = spec.state == "running" and (live is None or not live.active)
    if starts and facts.memory_kib and spec.memory.max > facts.memory_kib * 1024:
        out.append(_diag(item, ("spec", "memory", "max"),
                         f"{human_size(spec.memory.max)} is more than the {human_size(facts.memory_kib * 1024)} "
                         f"of memory {where} has: QEMU cannot start it"))
    return out


def _network(item: Item, state: HostState, known: dict | None) -> list[Diagnostic]:
    spec = item.spec
    if known is None:
        return []
    devices = [(("spec", "interfaces", n), dev) for n, dev in enumerate(spec.interfaces)]
    devices += [(("spec", "pf"), spec.pf)] if spec.pf else []
    devices += [(("spec", "forward_dev"), spec.forward_dev)] if spec.forward_dev else []
    missing = [_diag(item, where, f"host {state.host!r} has no interface {dev!r}") for where, dev in devices
               if dev not in known]
    if missing or spec.forward != "bridge" or not spec.bridge:
        return missing
    if spec.bridge not in known:
        bridges = ", ".join(sorted(n for n, t in known.items() if t == "bridge")) or "none"
        return [_diag(item, ("spec", "bridge"), f"host {state.host!r} has no interface {spec.bridge!r} "
                                                f"(its bridges: {bridges})")]
    if known[spec.bridge] != "bridge":
        return [_diag(item, ("spec", "bridge"), f"{spec.bridge!r} on host {state.host!r} is not a bridge "
                                                f"(libvirt reports an interface of type {known[spec.bridge]!r})")]
    return []


def _creatable(path: str) -> str | None:
    """Why directory `path` cannot be made here, or None (it exists, or its first existing parent
    is a writable directory)."""
    target = Path(path)
    if target.is_dir():
        return None
    for parent in [target, *target.parents]:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a directory"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable"
            return None
    return None


def _local_files(item: Item, state: HostState) -> list[Diagnostic]:
    """Files a local host must have for `item`: creatable pool directories; readable images and
    media of a guest that runs (a shut-off guest's are only needed when it starts)."""
    out = []
    if item.ref.kind == "StoragePool":
        why = _creatable(item.spec.path) if item.spec.type in ("dir", "fs", "netfs") else None
        if why:
            out.append(_diag(item, ("spec", "path"), f"the pool directory cannot be created: {why}"))
        for n, device in enumerate(item.spec.source.devices if item.spec.source else []):
            if not Path(device).is_block_device():
                out.append(_diag(item, ("spec", "source", "devices", n), f"{device} is not a block device on "
                                                                         f"host {state.host!r}"))
    elif item.ref.kind == "Guest" and item.spec.state != "shutoff":     # QEMU opens them when it starts
        for n, disk in enumerate(item.spec.disks):
            if disk.path and not os.path.isfile(disk.path) and not Path(disk.path).is_block_device():
                out.append(_diag(item, ("spec", "disks", n, "path"), f"{disk.path} does not exist on host "
                                                                      f"{state.host!r} (or is not a file)"))
            elif disk.path and not os.access(disk.path, os.R_OK):
                out.append(_diag(item, ("spec", "disks", n, "path"), f"{disk.path} is not readable"))
            if disk.block and not Path(disk.block).is_block_device():
                out.append(_diag(item, ("spec", "disks", n, "block"), f"{disk.block} is not a block device on "
                                                                       f"host {state.host!r}"))
        for name in ("kernel", "initrd"):
            file = getattr(item.spec, name)
            if file and not os.access(file, os.R_OK):
                out.append(_diag(item, ("spec", name), f"{file} does not exist or is not readable on host {state.host!r}"))
        for n, fs in enumerate(item.spec.filesystems):
            if not os.path.isdir(fs.source):
                out.append(_diag(item, ("spec", "filesystems", n, "source"),
                                 f"{fs.source} is not a directory on host {state.host!r}"))
            if fs.driver == "virtiofs" and not any(os.access(p, os.X_OK) for p in VIRTIOFSD):
                out.append(_diag(item, ("spec", "filesystems", n, "driver"),
                                 f"virtiofs needs virtiofsd, which host {state.host!r} lacks (Debian: "
                                 "qemu-system-common; SUSE: virtiofsd)"))
    return out


def _nic_links(item: Item, state: HostState, known: dict | None) -> list[Diagnostic]:
    """The host bridge or interface a running guest's NIC sits on exists (and a bridge is one)."""
    out = []
    if known is None:
        return out
    for n, nic in enumerate(item.spec.interfaces):
        if nic.bridge and known.get(nic.bridge) != "bridge":
            what = "is not a bridge" if nic.bridge in known else "does not exist"
            out.append(_diag(item, ("spec", "interfaces", n, "bridge"), f"{nic.bridge!r} {what} on host {state.host!r}"))
        if nic.direct and nic.direct.dev not in known:
            out.append(_diag(item, ("spec", "interfaces", n, "direct", "dev"),
                             f"{nic.direct.dev!r} does not exist on host {state.host!r}"))
    return out


VIRTIOFSD = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd", "/usr/bin/virtiofsd")
FIRMWARE_DESCRIPTORS = (Path("/usr/share/qemu/firmware"), Path("/etc/qemu/firmware"))


def _boot_needs(item: Item, state: HostState) -> list[Diagnostic]:
    """A guest that will start (a local host): its firmware files, UEFI firmware descriptors and
    swtpm. A new guest's needs come from its manifest; an existing one's from its saved definition
    (firmware and TPM the manifest does not state stay as they are: edit in place)."""
    live, spec = state.get("Guest", item.ref.name), item.spec
    if spec.state == "shutoff" or (live is not None and live.active):
        return []
    if live is None:
        files, efi, tpm = [], spec.firmware == "efi", spec.tpm is not None
        efi_at, tpm_at = ("spec", "firmware"), ("spec", "tpm")
    else:
        root = live.root
        files = [str(p).strip() for p in root.xpath("os/loader/text() | os/nvram/@template")]
        efi = bool(root.xpath("os[@firmware='efi']")) and not root.xpath("os/loader/text()")
        tpm = bool(root.xpath("devices/tpm/backend[@type='emulator']"))
        efi_at = tpm_at = ("spec", "state")
    where = f"host {state.host!r}"
    out = [_diag(item, ("spec", "state"), f"its firmware file {f} is missing on {where} (install OVMF, or fix "
                                          "<os> with virsh edit)") for f in files if not os.path.exists(f)]
    if efi and not any(d.is_dir() and any(d.glob("*.json")) for d in FIRMWARE_DESCRIPTORS):
        out.append(_diag(item, efi_at, f"it asks for UEFI firmware and {where} has no firmware descriptors "
                                       "(install OVMF)"))
    if tpm and not shutil.which("swtpm"):
        out.append(_diag(item, tpm_at, f"its emulated TPM needs swtpm, which {where} lacks (install swtpm)"))
    return out


def _raw_volumes(items: list[Item], state: HostState) -> list[Diagnostic]:
    """New fully allocated volumes (raw by default) must fit in their pool's free space."""
    out, wanted = [], {}
    for item in items:
        if item.ref.kind != "Volume" or state.get("Volume", item.ref.name):
            continue
        if not item.spec.full:
            continue
        pool = state.get("StoragePool", item.spec.pool)
        if pool is None or item.spec.pool not in state.listed_pools:
            continue
        found = pool.root.xpath("available")
        free = fields.size(found[0]) if found else None
        wanted[item.spec.pool] = wanted.get(item.spec.pool, 0) + item.spec.capacity
        if free is not None and wanted[item.spec.pool] > free:
            out.append(_diag(item, ("spec", "capacity"),
                             f"a fully allocated volume (raw, unless allocation: sparse) takes all of its capacity, and "
                             f"pool {item.spec.pool!r} has {human_size(free)} free for "
                             f"{human_size(wanted[item.spec.pool])} of new fully allocated volumes"))
    return out


def _bridge(item: Item, state: HostState, network_config: str, instance: str) -> list[Diagnostic]:
    """What the host's network configuration cannot keep, and ports the host lacks."""
    from .desired import bridge_config
    out = [_diag(item, ("spec",), f"{why} ({network_config})")
           for why in netconfig.problems(bridge_config(item, instance), network_config)]
    if item.spec.dhcp and network_config == "runtime":
        out.append(_diag(item, ("spec", "dhcp"), "a DHCP address is the host's network configuration's: set Host "
                                                 "spec.network_config (runtime runs no DHCP client)"))
    for n, port in enumerate(item.spec.ports):
        vlan = netconfig.vlan_of(port)          # a VLAN port is made on its parent
        if state.links is not None and port not in state.links and not (vlan and vlan[0] in state.links):
            out.append(_diag(item, ("spec", "ports", n), f"host {state.host!r} has no interface {port!r}"))
    return out


def problems(items: list[Item], state: HostState, network_config: str = "runtime",
             instance: str = "default") -> list[Diagnostic]:
    """Everything in `items` (one host's objects) that this host would refuse."""
    out = []
    local = hostnet.is_local(state.uri)
    secrets = {i.ref.name for i in items if i.ref.kind == "Secret"}
    known = state.facts.interfaces        # with the declared Bridges: made before the objects on them
    if known is not None:
        known = known | {i.ref.name: "bridge" for i in items if i.ref.kind == "Bridge"}
    for item in items:
        if item.ref.kind == "Guest":
            out += _guest(item, state, secrets) + (_boot_needs(item, state) if local else [])
            out += _nic_links(item, state, known) if item.spec.state != "shutoff" else []
        elif item.ref.kind == "Network":
            out += _network(item, state, known)
        elif item.ref.kind == "Bridge":
            out += _bridge(item, state, network_config, instance)
        if local:
            out += _local_files(item, state)
    return out + _raw_volumes(items, state)
