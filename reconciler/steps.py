"""How each plan operation is carried out with the adapter's single calls: the policy the thin
adapter leaves out (waiting for a shutdown, re-plugging taps, writing ownership records,
checking a volume's XML before libvirt sees it)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import Callable, Iterator, Protocol

from lxml import etree
from markupsafe import escape as xml_escape

from . import bridgeops, edit, fields, hostbridge, hostlinks, hostnet, images, netconfig, ownership, rng, secretref
from .errors import AdapterError
from .identity import OWNER_NS, OWNER_PREFIX
from .plan import OpName

POLL = 0.5        # seconds between looks at a guest that is shutting down


class HostPort(Protocol):
    """The adapter's single calls these steps use (adapter.Host implements them)."""

    name: str
    uri: str

    def saved_xml(self, kind: str, name: str) -> str: ...
    def running_xml(self, kind: str, name: str) -> str: ...
    def is_active(self, kind: str, name: str) -> bool: ...
    def running_guests(self) -> list[str]: ...
    def bridge_name(self, kind: str, name: str) -> str: ...
    def volume_names(self, kind: str, pool: str) -> list[str]: ...
    def define(self, kind: str, name: str, xml: str) -> None: ...
    def build_pool(self, kind: str, name: str, mode: str = "plain") -> None: ...
    def start(self, kind: str, name: str) -> None: ...
    def stop(self, kind: str, name: str) -> None: ...
    def shutdown(self, kind: str, name: str) -> None: ...
    def suspend(self, kind: str, name: str) -> None: ...
    def resume(self, kind: str, name: str) -> None: ...
    def set_autostart(self, kind: str, name: str, flag: bool) -> None: ...
    def set_memory(self, kind: str, name: str, kib: int) -> None: ...
    def set_vcpus(self, kind: str, name: str, count: int) -> None: ...
    def attach_device(self, kind: str, name: str, xml: str) -> None: ...
    def update_device(self, kind: str, name: str, xml: str, saved: bool = True) -> None: ...
    def detach_device(self, kind: str, name: str, xml: str) -> None: ...
    def set_metadata(self, kind: str, name: str, element: str | None, prefix: str, namespace: str,
                     live: bool, saved: bool) -> None: ...
    def undefine(self, kind: str, name: str, tpm: bool = False) -> None: ...
    def network_update(self, kind: str, name: str, command: str, section: str, xml: str, live: bool) -> None: ...
    def create_volume(self, kind: str, name: str, pool: str, xml: str, prealloc: bool = False) -> None: ...
    def clone_volume(self, kind: str, name: str, pool: str, xml: str, from_pool: str, from_volume: str) -> None: ...
    def upload_volume(self, kind: str, name: str, pool: str, volume: str, chunks, length: int) -> None: ...
    def volume_capacity(self, kind: str, name: str, pool: str, volume: str) -> int: ...
    def delete_volume(self, kind: str, name: str, pool: str, volume: str) -> None: ...
    def resize_volume(self, kind: str, name: str, pool: str, volume: str, capacity: int, shrink: bool) -> None: ...
    def define_secret(self, kind: str, usage: str, xml: str) -> None: ...
    def secret_xml(self, kind: str, usage: str) -> str: ...
    def undefine_secret(self, kind: str, usage: str) -> None: ...
    def set_secret_value(self, kind: str, name: str, value: bytes) -> None: ...
    def migrate(self, kind: str, name: str, dest, persist_xml: str, address: str | None = None,
                copy: list[str] = ()) -> None: ...
    def download_volume(self, kind: str, name: str, pool: str, volume: str): ...
    def undefine_moved(self, kind: str, name: str) -> None: ...
    def refresh_pool(self, kind: str, name: str) -> None: ...
    def pool_at(self, kind: str, name: str, path: str) -> str | None: ...
    def open_directory(self, kind: str, name: str, pool: str, path: str) -> None: ...


def _unprefixed(xml: str) -> str:
    """An element without its namespace: setMetadata puts it into the namespace it is given."""
    el = etree.fromstring(xml.encode())
    plain = etree.Element(etree.QName(el).localname, dict(el.attrib))
    plain.text = el.text
    return etree.tostring(plain, encoding="unicode")


def edit_saved(host: HostPort, kind: str, name: str, edits: list, marker: str | None) -> None:
    """Redefine from the saved definition, read now, with exactly `edits` and the owner marker
    (a password an edit names is read now: secretref.reveal)."""
    host.define(kind, name, secretref.reveal(edit.apply(kind, host.saved_xml(kind, name), edits, marker)))


def set_graphics_password(host: HostPort, kind: str, name: str, type: str, password: str) -> None:
    """Give the running guest's graphics the password `password` names (a secretref token),
    keeping the rest of the running element as it is; the saved definition is the EDIT's."""
    root = etree.fromstring(host.running_xml(kind, name).encode())
    graphics = root.find(f"devices/graphics[@type='{type}']")
    if graphics is None:
        raise AdapterError("update device", f"{kind}/{name}", f"the running guest has no {type} graphics")
    graphics.set("passwd", password)
    host.update_device(kind, name, secretref.reveal(etree.tostring(graphics, encoding="unicode")), saved=False)


def shutdown(host: HostPort, kind: str, name: str, timeout: float, force: bool) -> None:
    """ACPI shutdown, waiting up to `timeout` s; then power off only when `force`."""
    if host.is_active(kind, name):
        host.shutdown(kind, name)
    deadline = time.monotonic() + timeout
    while host.is_active(kind, name):
        if time.monotonic() > deadline:
            if force:
                host.stop(kind, name)
                return
            raise AdapterError("shutdown", f"{kind}/{name}", f"the guest did not shut down within {timeout} s "
                               "(use --force-stop to power it off after the timeout)")
        time.sleep(POLL)


def restart(host: HostPort, kind: str, name: str, timeout: float, force: bool) -> None:
    shutdown(host, kind, name, timeout, force)
    host.start(kind, name)


def set_live_owner(host: HostPort, kind: str, name: str, xml: str) -> None:
    """Give the running guest the saved owner marker (when all changes were made live)."""
    host.set_metadata(kind, name, _unprefixed(xml), OWNER_PREFIX, OWNER_NS, live=True, saved=False)


def adopt_owner(host: HostPort, kind: str, name: str, xml: str) -> None:
    """Put an owner marker on an existing guest (saved and running) or network (saved)."""
    if kind == "Guest":
        host.set_metadata(kind, name, _unprefixed(xml), OWNER_PREFIX, OWNER_NS,
                          live=host.is_active(kind, name), saved=True)
    else:       # libvirt 9.0 has no virNetworkSetMetadata: redefine with the marker
        edit_saved(host, kind, name, [], xml)


def drop_owner(host: HostPort, kind: str, name: str) -> None:
    """Remove the owner marker: the object stays, unmanaged."""
    if kind == "Guest":
        host.set_metadata(kind, name, None, OWNER_PREFIX, OWNER_NS, live=False, saved=True)
        if host.is_active(kind, name):
            host.set_metadata(kind, name, None, OWNER_PREFIX, OWNER_NS, live=True, saved=False)
    else:
        edit_saved(host, kind, name, [], None)


def record(host: HostPort, kind: str, name: str, instance: str, record: dict | None) -> None:
    """Set (None: remove) one pool's or volume's ownership record: a secret of its own. A record
    names its object itself (a plan moving records runs this op on the inventory domain)."""
    if record is not None:
        kind, name = record.get("kind") or kind, record.get("name") or name
    usage = ownership.record_usage(instance, kind, name)
    if record is not None:
        host.define_secret("Secret", usage, ownership.record_secret(instance, kind, name, record))
        return
    try:
        host.undefine_secret("Secret", usage)
    except AdapterError as exc:
        if exc.reason != "gone":
            raise


def forget(host: HostPort, kind: str, name: str, instance: str) -> None:
    record(host, kind, name, instance, None)


def migrate(host: HostPort, kind: str, name: str, source, live: bool = True, address: str | None = None,
            copy: list[str] | None = None) -> None:
    """Move a guest from `source` to this host keeping its saved definition as it is there (with
    its secrets): live migration when it runs (to this host's `address`, when given; the disks
    `copy` names copied into the volumes made for them here), else define here and undefine there.
    A guest that started or stopped since the plan is left alone (its volumes were planned for how
    it was)."""
    if source.is_active(kind, name) != live:
        raise AdapterError("move", f"{kind}/{name}", "it " + ("started" if not live else "stopped")
                           + " since the plan was made: nothing was moved; plan again")
    xml = source.saved_xml(kind, name)
    if live:
        source.migrate(kind, name, host, xml, address, copy or [])
        return
    host.define(kind, name, xml)
    source.undefine_moved(kind, name)


def copy_volume(host: HostPort, kind: str, name: str, source, pool: str, volume: str) -> None:
    """Stream a volume's data from `source` into the volume of that name made here (its bytes as
    they are: a qcow2 file arrives as the same qcow2 file)."""
    host.upload_volume(kind, name, pool, volume, source.download_volume(kind, name, pool, volume), 0)


@contextlib.contextmanager
def _directory(host: HostPort, path: str, tag: str) -> Iterator[str]:
    """A pool over directory `path` of `host`: the one it has, else a transient one, stopped after."""
    existing = host.pool_at("StoragePool", path, path)
    if existing:
        yield existing
        return
    name = f"virt-reconcile-move-{tag}"
    host.open_directory("StoragePool", name, name, path)
    try:
        yield name
    finally:
        host.stop("StoragePool", name)


def copy_file(host: HostPort, kind: str, name: str, source, path: str) -> None:
    """Copy the file at `path` on `source` to the same path here (a shut-off guest's UEFI NVRAM or
    TPM state: files, not libvirt objects, reached through pools over their directories). A file
    the source does not have (a guest never started) is no error."""
    directory, file = os.path.split(path)
    tag = hashlib.sha256(f"{name}\0{path}".encode()).hexdigest()[:12]
    with _directory(source, directory, tag) as there:
        try:
            size = source.volume_capacity("Volume", f"{there}/{file}", there, file)
        except AdapterError as exc:
            if exc.reason == "gone":
                return
            raise
        with _directory(host, directory, tag) as here:
            xml = f"<volume><name>{xml_escape(file)}</name><capacity unit='bytes'>{size}</capacity>" \
                  "<target><format type='raw'/></target></volume>"
            host.create_volume("Volume", f"{here}/{file}", here, xml)
            host.upload_volume("Volume", f"{here}/{file}", here, file,
                               source.download_volume("Volume", f"{there}/{file}", there, file), 0)


def find_volume(host: HostPort, kind: str, name: str, pool: str, volume: str, source: str) -> None:
    """Fail unless the volume's file is in this host's pool (scanned again first): a volume moves
    only on storage both hosts share."""
    host.refresh_pool("StoragePool", pool)
    try:
        host.volume_capacity(kind, name, pool, volume)
    except AdapterError as exc:
        if exc.reason != "gone":
            raise
        raise AdapterError("move", f"{kind}/{name}", f"its file is not in pool {pool} on this host, so host "
                           f"{source} and this one do not share that storage: nothing was moved") from None


def forget_on(host: HostPort, kind: str, name: str, source, instance: str) -> None:
    """Remove an object's ownership record from `source` (it moved to this host)."""
    record(source, kind, name, instance, None)


def network_update(host: HostPort, kind: str, name: str, command: str, section: str, xml: str, key: str) -> None:
    host.network_update(kind, name, command, section, xml, live=host.is_active(kind, name))


def replug_guests(host: HostPort, kind: str, name: str) -> None:
    """Put running guests' taps back on a restarted network's bridge (libvirt leaves them
    orphaned). Done on this machine's links, so only where the host is this machine."""
    if not hostnet.is_local(host.uri):
        return
    bridge = host.bridge_name(kind, name)
    for guest in host.running_guests():
        root = etree.fromstring(host.running_xml("Guest", guest).encode())
        for tap in root.xpath("devices/interface[@type='network'][source/@network=$net]/target/@dev", net=name):
            problem = hostnet.set_master(tap, bridge)
            if problem:
                raise AdapterError("replug", f"{kind}/{name}", f"re-plugging {tap} into {bridge}: {problem}")


def build_pool(host: HostPort, kind: str, name: str, device: bool = False, overwrite: bool = False) -> None:
    """Build a pool (make its directory or mount point; on a device: its filesystem, partition
    table or volume group). A device is formatted only when it is blank, or, with `overwrite`,
    when it holds something else; one that already holds what the pool wants is left as it is."""
    if not device:
        try:
            host.build_pool(kind, name, "plain")
        except AdapterError as exc:
            if "File exists" not in exc.message:
                raise
            host.build_pool(kind, name, "plain")     # another host made the shared directory meanwhile
        return
    try:
        host.build_pool(kind, name, "no_overwrite")
    except AdapterError as exc:
        if exc.reason != "built":
            raise
        if "already formatted" in exc.message:      # it holds what the pool wants
            return
        if not overwrite:
            raise AdapterError("build", f"{kind}/{name}", f"{exc.message}. The device holds other data and is "
                               "never formatted unless the manifest says overwrite: true (its data is lost)",
                               exc.code, exc.reason) from None
        host.build_pool(kind, name, "overwrite")


LUKS_TRIES = 8      # qemu-img's LUKS key-derivation benchmark fails now and then on a busy host


def _create(host: HostPort, kind: str, name: str, pool: str, xml: str, prealloc: bool) -> None:
    """Create a volume, again when qemu-img's LUKS benchmark could not time itself ("Unable to
    get accurate CPU usage": nothing was made)."""
    for attempt in range(LUKS_TRIES):
        try:
            host.create_volume(kind, name, pool, xml, prealloc)
            return
        except AdapterError as exc:
            if "Unable to get accurate CPU usage" not in exc.message or attempt + 1 == LUKS_TRIES:
                raise
            time.sleep(0.1)


def _grow(host: HostPort, kind: str, name: str, pool: str, volume: str, capacity: int | None) -> None:
    """Grow a volume made from an image or a clone (it has that one's size) to `capacity`."""
    if capacity and capacity > host.volume_capacity(kind, name, pool, volume):
        host.resize_volume(kind, name, pool, volume, capacity, False)


def _fill(host: HostPort, kind: str, name: str, pool: str, volume: str, xml: str, image: dict,
          capacity: int, note: Callable[[str], None]) -> None:
    """Create the volume from an image: fetched and checked first, then uploaded, then grown."""
    fmt = fields.parse(xml).find("target/format").get("type")
    try:
        with images.fetched(image, note) as path:
            found, size = images.probe(path)
            if found != fmt:
                raise images.ImageError(f"the image is {found}, the volume {fmt}: state format: {found}")
            if size > capacity:
                raise images.ImageError(f"the image's virtual size ({size} bytes) is more than the volume's "
                                        f"capacity ({capacity} bytes)")
            _create(host, kind, name, pool, xml, False)
            try:
                host.upload_volume(kind, name, pool, volume, images.chunks(path, note), os.path.getsize(path))
            except (AdapterError, OSError):
                host.delete_volume(kind, name, pool, volume)     # half an image is no image
                raise
    except (images.ImageError, OSError) as exc:
        raise AdapterError("create", f"{kind}/{name}", str(exc)) from None
    _grow(host, kind, name, pool, volume, capacity)


def create_volume(host: HostPort, kind: str, name: str, pool: str, volume: str, xml: str,
                  if_missing: bool = False, prealloc: bool = False, image: dict | None = None,
                  clone: dict | None = None, capacity: int | None = None, secret: dict | None = None,
                  seed: dict | None = None, note: Callable[[str], None] = lambda text: None) -> None:
    """Create a volume: empty, from an image, as a clone, or as a cloud-init seed (its ISO made
    now from the documents `seed` holds, then uploaded like an image); a LUKS volume's secret
    (usage: its path) first. libvirt 9.0 rejects VIR_STORAGE_VOL_CREATE_VALIDATE, so the XML is
    checked against storagevol.rng here."""
    problems = rng.errors("Volume", xml)
    if problems:
        raise AdapterError("create", f"{kind}/{name}", "volume XML does not match storagevol.rng: "
                           + "; ".join(problems))
    if if_missing and volume in host.volume_names("StoragePool", pool):
        return
    if secret:
        host.define_secret("VolumeSecret", secret["usage"], secret["xml"])
        host.set_secret_value("VolumeSecret", secret["usage"], secretref.value_of(secret["value"]).encode())
    if seed:
        from . import seed as seeds     # pycdlib: only for cloud-init seeds
        try:
            with seeds.written(seed) as path:
                _fill(host, kind, name, pool, volume, xml, {"path": path}, capacity, note)
        except (OSError, seeds.pycdlib.pycdlibexception.PyCdlibException) as exc:
            raise AdapterError("create", f"{kind}/{name}", f"cannot make the cloud-init seed image: {exc}") from None
    elif image:
        _fill(host, kind, name, pool, volume, xml, image, capacity, note)
    elif clone:
        host.clone_volume(kind, name, pool, xml, clone["pool"], clone["volume"])
        _grow(host, kind, name, pool, volume, capacity)
    else:
        _create(host, kind, name, pool, xml, prealloc)


def delete_volume(host: HostPort, kind: str, name: str, pool: str, volume: str, secret: str | None = None) -> None:
    """Delete a volume, and the LUKS secret (usage: its path) that only it used."""
    host.delete_volume(kind, name, pool, volume)
    if secret:
        try:
            host.undefine("VolumeSecret", secret)
        except AdapterError as exc:
            if exc.reason != "gone":
                raise


def set_volume_permissions(host: HostPort, kind: str, name: str, path: str, mode: str | None = None,
                           owner: int | None = None, group: int | None = None) -> None:
    """chmod/chown a volume's file: libvirt sets them only when it creates one, so this is done
    where the host is this machine."""
    if not hostnet.is_local(host.uri):
        raise AdapterError("set permissions", f"{kind}/{name}", f"libvirt cannot change an existing volume's mode "
                           f"or owner, and {host.uri} is not this machine: change them on the host")
    try:
        if mode is not None:
            os.chmod(path, int(mode, 8))
        if owner is not None or group is not None:
            os.chown(path, -1 if owner is None else owner, -1 if group is None else group)
    except OSError as exc:
        raise AdapterError("set permissions", f"{kind}/{name}", f"{path}: {exc.strerror}") from None


def bridge_apply(host: HostPort, kind: str, name: str, want: dict, guard: dict | None = None) -> None:
    """Make the host bridge what the manifest says, through netlink (ip over ssh). With a guard
    (it moves the connection to the host) the links are put back as they were when the host is
    not reached again within the guard's timeout."""
    links = hostlinks.links_for(host.uri)
    try:
        before = links.read()
        try:
            bridgeops.converge(links, want)
        except hostlinks.BridgeError as exc:
            bridgeops.restore(links, before, name)
            raise AdapterError("bridge", f"{kind}/{name}", f"{exc}; its links were put back as they were") from None
        if guard and not bridgeops.reachable(host.uri, guard.get("probe"), guard["timeout"]):
            bridgeops.restore(links, before, name)
            raise AdapterError("bridge", f"{kind}/{name}", f"the host was not reached again within {guard['timeout']} s "
                               "after the change: rolled back (its links are as they were)")
    except (hostlinks.BridgeError, OSError) as exc:
        raise AdapterError("bridge", f"{kind}/{name}", str(exc)) from None
    finally:
        links.close()


def bridge_persist(host: HostPort, kind: str, name: str, files: dict, stale: list[str] | None = None) -> None:
    """Write the bridge's files of the host's network configuration, and remove those it no
    longer needs (another backend, a port gone); only the tool's own files are touched."""
    try:
        hostbridge.write_files(host.uri, {path: (text, mode) for path, (text, mode) in files.items()})
        hostbridge.remove_files(host.uri, stale or [])
    except (hostlinks.BridgeError, netconfig.NetconfigError, OSError) as exc:
        raise AdapterError("persist", f"{kind}/{name}", str(exc)) from None


def bridge_delete(host: HostPort, kind: str, name: str, files: list[str] | None = None) -> None:
    """Delete the host bridge (its ports released) and its files."""
    links = hostlinks.links_for(host.uri)
    try:
        bridgeops.release(links, name)
        hostbridge.remove_files(host.uri, files or [])
    except (hostlinks.BridgeError, netconfig.NetconfigError, OSError) as exc:
        raise AdapterError("delete", f"{kind}/{name}", str(exc)) from None
    finally:
        links.close()


# Every operation a plan may hold and how it is done (EDIT's edits are Edit objects here).
STEPS: dict[OpName, Callable] = {
    OpName.DEFINE_DOMAIN: lambda h, k, n, xml: h.define(k, n, secretref.reveal(xml)),
    OpName.DEFINE_NETWORK: lambda h, k, n, xml: h.define(k, n, xml),
    OpName.DEFINE_POOL: lambda h, k, n, xml: h.define(k, n, xml),
    OpName.DEFINE_SECRET: lambda h, k, n, xml: h.define(k, n, xml),
    OpName.SET_SECRET_VALUE: lambda h, k, n, value: h.set_secret_value(k, n, secretref.value_of(value).encode()),
    OpName.EDIT: edit_saved,
    OpName.BUILD_POOL: build_pool,
    OpName.START: lambda h, k, n: h.start(k, n),
    OpName.STOP: lambda h, k, n: h.stop(k, n),
    OpName.SUSPEND: lambda h, k, n: h.suspend(k, n),
    OpName.RESUME: lambda h, k, n: h.resume(k, n),
    OpName.SET_AUTOSTART: lambda h, k, n, flag: h.set_autostart(k, n, flag),
    OpName.SET_MEMORY: lambda h, k, n, kib: h.set_memory(k, n, kib),
    OpName.SET_VCPUS: lambda h, k, n, count: h.set_vcpus(k, n, count),
    OpName.ATTACH_DEVICE: lambda h, k, n, xml: h.attach_device(k, n, secretref.reveal(xml)),
    OpName.UPDATE_DEVICE: lambda h, k, n, xml: h.update_device(k, n, secretref.reveal(xml)),
    OpName.DETACH_DEVICE: lambda h, k, n, xml: h.detach_device(k, n, xml),
    OpName.SET_GRAPHICS_PASSWORD: set_graphics_password,
    OpName.SET_LIVE_OWNER: set_live_owner,
    OpName.UNDEFINE: lambda h, k, n, tpm=False: h.undefine(k, n, tpm),
    OpName.ADOPT_OWNER: adopt_owner,
    OpName.DROP_OWNER: drop_owner,
    OpName.RECORD: record,
    OpName.FORGET: forget,
    OpName.MIGRATE: migrate,
    OpName.FORGET_ON: forget_on,
    OpName.FIND_VOLUME: find_volume,
    OpName.COPY_VOLUME: copy_volume,
    OpName.COPY_FILE: copy_file,
    OpName.SHUTDOWN: shutdown,
    OpName.RESTART: restart,
    OpName.NETWORK_UPDATE: network_update,
    OpName.REPLUG_GUESTS: replug_guests,
    OpName.CREATE_VOLUME: create_volume,
    OpName.DELETE_VOLUME: delete_volume,
    OpName.SET_VOLUME_PERMISSIONS: set_volume_permissions,
    OpName.BRIDGE_APPLY: bridge_apply,
    OpName.BRIDGE_PERSIST: bridge_persist,
    OpName.BRIDGE_DELETE: bridge_delete,
    OpName.RESIZE_VOLUME: lambda h, k, n, pool, volume, capacity, shrink: h.resize_volume(
        k, n, pool, volume, capacity, shrink),
}


def run(host: HostPort, kind: str, name: str, op: OpName, args: dict) -> None:
    """Carry out one plan operation on one object."""
    STEPS[OpName(op)](host, kind, name, **args)
