"""The only module that imports libvirt: one bulk read (observe) and one method per libvirt call."""
from __future__ import annotations

import contextlib
import functools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

from . import deadline, uris
from .errors import AdapterError, HostError

try:
    import libvirt
except ImportError:
    raise HostError(f"libvirt-python is not installed for {sys.executable}: install python3-libvirt (Debian, "
                    "Ubuntu) or python3-libvirt-python (SUSE) and use a venv made with --system-site-packages, "
                    "or 'pip install libvirt-python' with libvirt-dev (libvirt-devel), pkg-config and a C "
                    "compiler installed") from None

from lxml import etree
from markupsafe import escape

from . import fields
from .live import HostState, LiveObject, capabilities
from .ownership import LOCK_USAGE, RECORD_USAGE

libvirt.registerErrorHandler(lambda *_: None, None)   # errors become exceptions, not stderr noise

# A daemon that stops answering (frozen, host gone) is dropped after about
# KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1) seconds; its calls then fail instead of waiting.
KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 3
# Reads in flight at once on one connection while observing (libvirt answers them in parallel).
READERS = 4
STREAM_CHUNK = 256 * 1024      # libvirt's stream messages carry 256 KiB at most
# Errors that mean "the object went away while we read it" (another client deleted it).
_GONE = {libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_ERR_NO_STORAGE_POOL,
         libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_SECRET}
TOOL_USAGES = (RECORD_USAGE, LOCK_USAGE)
_SECRET_USAGES = {"ceph": libvirt.VIR_SECRET_USAGE_TYPE_CEPH, "iscsi": libvirt.VIR_SECRET_USAGE_TYPE_ISCSI,
                  "tls": libvirt.VIR_SECRET_USAGE_TYPE_TLS, "vtpm": libvirt.VIR_SECRET_USAGE_TYPE_VTPM}
_events_started = threading.Lock()
_events_running = False


def _start_event_loop() -> None:
    """libvirt's keepalive needs an event loop; run the default one in a daemon thread, once."""
    global _events_running
    with _events_started:
        if _events_running:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt events", daemon=True).start()
        _events_running = True

LIVE_CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
_NET_SECTIONS = {"ip-dhcp-host": libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                 "dns-host": libvirt.VIR_NETWORK_SECTION_DNS_HOST,
                 "dns-txt": libvirt.VIR_NETWORK_SECTION_DNS_TXT,
                 "dns-srv": libvirt.VIR_NETWORK_SECTION_DNS_SRV,
                 "portgroup": libvirt.VIR_NETWORK_SECTION_PORTGROUP}
_BUILD_FLAGS = {"plain": 0, "no_overwrite": libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE,
                "overwrite": libvirt.VIR_STORAGE_POOL_BUILD_OVERWRITE}
_NET_COMMANDS = {"add": libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                 "delete": libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                 "modify": libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY}


# What a libvirt error code means to the callers (they never see libvirt's codes).
_REASONS = {code: "gone" for code in _GONE} | {libvirt.VIR_ERR_OPERATION_FAILED: "failed",
                                               libvirt.VIR_ERR_OPERATION_INVALID: "invalid",
                                               libvirt.VIR_ERR_STORAGE_POOL_BUILT: "built"}


def _error(op: str, target: str, exc) -> AdapterError:
    code = exc.get_error_code()
    return AdapterError(op, target, exc.get_error_message() or str(exc), code, _REASONS.get(code, ""))


@contextmanager
def _call(op: str, target: str):
    try:
        yield
    except libvirt.libvirtError as exc:
        raise _error(op, target, exc) from None


def _libvirt(op: str):
    """A method's libvirt errors become AdapterErrors naming `op` and the object (kind, name)."""
    def wrap(method):
        @functools.wraps(method)
        def call(self, kind, name, *args, **kwargs):
            try:
                return method(self, kind, name, *args, **kwargs)
            except libvirt.libvirtError as exc:
                raise _error(op, f"{kind}/{name}", exc) from None
        return call
    return wrap


def _gone(read: Callable[[], LiveObject]) -> LiveObject | None:
    """read(), or None when the object was deleted by someone else after it was listed."""
    try:
        return read()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in _GONE:
            return None
        raise


class Host:
    """One libvirt connection. Read-only unless opened with readonly=False.

    The URI is checked again here (a saved plan names URIs too): nothing that starts a program is
    opened. Opening waits at most `timeout` seconds; the connection has libvirt keepalive."""

    def __init__(self, name: str, uri: str, readonly: bool = True, timeout: float = deadline.DEFAULT_TIMEOUT):
        self.name, self.uri, self.readonly, self.timeout = name, uri, readonly, timeout
        why = uris.problem(uri, allow_tcp=True)
        if why:
            raise HostError(f"host {name!r}: refusing URI {uri!r}: {why}")
        _start_event_loop()
        self.conn = deadline.within(timeout, f"host {name!r} ({uri})", self._open)
        try:
            self.conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass            # a driver without keepalive: the deadlines still bound every read

    def _open(self):
        try:
            return libvirt.openReadOnly(self.uri) if self.readonly else libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise HostError(f"host {self.name!r} ({self.uri}) cannot be reached: "
                            f"{exc.get_error_message()}") from None

    def close(self) -> None:
        """Close the connection; a connection that died or hangs is just dropped."""
        try:
            deadline.within(deadline.CLOSE_TIMEOUT, f"closing host {self.name!r}", self.conn.close)
        except (libvirt.libvirtError, HostError):
            pass

    # --- reading -------------------------------------------------------------------------------

    def observe(self, volume_pools: Callable[[HostState], set[str]] = lambda state: set()) -> HostState:
        """One pass over the host, within the host's timeout: each object's saved definition, run
        state and autostart; then the volumes of the pools `volume_pools` picks from what was read
        (active pools only). An object deleted by someone else meanwhile is left out."""
        return deadline.within(self.timeout, f"host {self.name!r} ({self.uri})", self._observe, volume_pools)

    def _observe(self, volume_pools: Callable[[HostState], set[str]]) -> HostState:
        with _call("read", self.uri), ThreadPoolExecutor(READERS, "libvirt read") as pool_of_readers:
            each = pool_of_readers.map
            state = HostState(self.name, self.uri, capabilities(self.conn.getCapabilities()))
            state.facts.memory_kib = self.conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)["total"]
            state.facts.interfaces = self._interfaces(each)
            state.secrets = self._secrets(state, each)
            # run state, autostart and persistence from a few filtered lists, not calls per object
            domains = self.conn.listAllDomains(0)
            running = self._names(self.conn.listAllDomains, libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            paused = self._names(self.conn.listAllDomains, libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED)
            autostart = self._names(self.conn.listAllDomains, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART) & \
                self._names(self.conn.listAllDomains, libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
            for obj in each(lambda dom: _gone(lambda: self._domain(dom, running, paused, autostart)), domains):
                self._keep(state, obj)
            self._read_all(state, each, "Network", self.conn.listAllNetworks, libvirt.VIR_NETWORK_XML_INACTIVE,
                           libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE, libvirt.VIR_CONNECT_LIST_NETWORKS_AUTOSTART)
            pools = self._read_all(state, each, "StoragePool", self.conn.listAllStoragePools,
                                   libvirt.VIR_STORAGE_XML_INACTIVE, libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE,
                                   libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_AUTOSTART)
            listed = sorted(name for name in volume_pools(state) & set(pools)
                            if ("StoragePool", name) in state.objects and state.objects[("StoragePool", name)].active)
            found = dict(zip(listed, each(lambda name: self._volume_list(pools[name]), listed)))
            state.listed_pools.update(name for name, got in found.items() if got is not None)
            vols = [(name, vol) for name, got in found.items() if got is not None for vol in got]
            for obj in each(lambda pair: _gone(lambda: LiveObject(
                    "Volume", f"{pair[0]}/{pair[1].name()}", pair[1].XMLDesc(0), True)), vols):
                self._keep(state, obj)
        return state

    @staticmethod
    def _names(list_all, flags: int) -> set[str]:
        return {obj.name() for obj in list_all(flags)}

    def _read_all(self, state: HostState, each, kind: str, list_all, xml_flags: int, active_flag: int,
                  autostart_flag: int) -> dict:
        """Every network or pool: its saved definition, run state and autostart (from two filtered
        lists); name -> its libvirt object."""
        listed = {obj.name(): obj for obj in list_all(0)}
        active, autostart = self._names(list_all, active_flag), self._names(list_all, autostart_flag)
        for obj in each(lambda found: _gone(lambda: LiveObject(
                kind, found.name(), found.XMLDesc(xml_flags), found.name() in active, found.name() in autostart)),
                listed.values()):
            self._keep(state, obj)
        return listed

    def _interfaces(self, each=map) -> dict[str, str] | None:
        """The host's network interfaces and their types (libvirt's udev backend); None when the
        driver cannot list them."""
        try:
            listed = self.conn.listAllInterfaces(0)
        except libvirt.libvirtError:
            return None

        def read(iface) -> tuple[str, str] | None:
            try:
                return iface.name(), fields.parse(iface.XMLDesc(0)).get("type", "")
            except (libvirt.libvirtError, etree.XMLSyntaxError):
                return None       # gone meanwhile, or unreadable: not a bridge we can use

        return dict(found for found in each(read, listed) if found is not None)

    def _secrets(self, state: HostState, each=map) -> dict[str, str]:
        """The tool's own secrets (ownership records, locks): usage -> XML; the Secret objects
        (ceph, iSCSI, TLS and vTPM secrets, named by their usage) go into `state`."""
        def read(secret) -> tuple[int, str, str | None]:
            usage_type, usage = secret.usageType(), secret.usageID()   # both come with the list
            if not (usage_type == libvirt.VIR_SECRET_USAGE_TYPE_VOLUME and usage.startswith(TOOL_USAGES)
                    or usage_type in _SECRET_USAGES.values()):
                return usage_type, usage, None
            try:
                return usage_type, usage, secret.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                    raise
                return usage_type, usage, None

        out = {}
        for usage_type, usage, xml in each(read, self.conn.listAllSecrets(0)):
            if xml is None:
                continue
            if usage_type == libvirt.VIR_SECRET_USAGE_TYPE_VOLUME:
                out[usage] = xml
            else:
                self._keep(state, LiveObject("Secret", usage, xml, True))
        return out

    @staticmethod
    def _keep(state: HostState, obj: LiveObject | None) -> LiveObject | None:
        if obj is not None:
            state.objects[(obj.kind, obj.name)] = obj
        return obj

    def _domain(self, dom, running: set[str], paused: set[str], autostart: set[str]) -> LiveObject:
        """A guest as read: its saved definition (with passwords on a read-write connection)."""
        name = dom.name()
        active = name in running
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE | (0 if self.readonly else libvirt.VIR_DOMAIN_XML_SECURE)
        return LiveObject("Guest", name, dom.XMLDesc(flags), active, name in autostart,
                          dom.XMLDesc(0) if active else None, name in paused)

    @staticmethod
    def _volume_list(pool) -> list | None:
        """A pool's volumes; None when the pool went away or stopped meanwhile."""
        try:
            return pool.listAllVolumes(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _GONE | {libvirt.VIR_ERR_OPERATION_INVALID}:
                return None
            raise

    # --- single calls ----------------------------------------------------------------------------
    # Each method is one libvirt call on one object (after its lookup); what to call when, and
    # what to do with the answer, is steps.py's (apply) and locking.py's.

    _SAVED_FLAGS = {"Guest": libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE,
                    "Network": libvirt.VIR_NETWORK_XML_INACTIVE, "StoragePool": libvirt.VIR_STORAGE_XML_INACTIVE,
                    "Secret": 0}

    def _lookup(self, kind: str, name: str):
        if kind == "VolumeSecret":  # a LUKS volume's secret, named by the volume's path
            return self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, name)
        if kind == "Secret":        # named by its usage, of whichever type holds it
            *others, last = _SECRET_USAGES.values()
            for usage_type in others:
                try:
                    return self.conn.secretLookupByUsage(usage_type, name)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                        raise
            return self.conn.secretLookupByUsage(last, name)
        if kind == "Guest":
            return self.conn.lookupByName(name)
        if kind == "Network":
            return self.conn.networkLookupByName(name)
        if kind == "StoragePool":
            return self.conn.storagePoolLookupByName(name)
        pool, _, vol = name.partition("/")
        return self.conn.storagePoolLookupByName(pool).storageVolLookupByName(vol)

    @_libvirt("read")
    def saved_xml(self, kind: str, name: str) -> str:
        """The saved definition an update edits: a guest's with its secrets (read-write
        connections only), a network's or pool's inactive one."""
        return self._lookup(kind, name).XMLDesc(self._SAVED_FLAGS[kind])

    @_libvirt("read")
    def running_xml(self, kind: str, name: str) -> str:
        """A running guest's live definition."""
        return self.conn.lookupByName(name).XMLDesc(0)

    @_libvirt("read")
    def is_active(self, kind: str, name: str) -> bool:
        return bool(self._lookup(kind, name).isActive())

    def running_guests(self) -> list[str]:
        with _call("read", self.uri):
            return [dom.name() for dom in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]

    @_libvirt("read")
    def bridge_name(self, kind: str, name: str) -> str:
        """The bridge device of an active network."""
        return self.conn.networkLookupByName(name).bridgeName()

    @_libvirt("read")
    def guest_uuid(self, kind: str, name: str) -> str:
        return self.conn.lookupByName(name).UUIDString()

    @_libvirt("read")
    def description(self, kind: str, name: str) -> str | None:
        """A guest's <description> (lock domains keep their holder there)."""
        return self.conn.lookupByName(name).metadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, None, 0)

    @_libvirt("read")
    def volume_names(self, kind: str, pool: str) -> list[str]:
        return self.conn.storagePoolLookupByName(pool).listVolumes()

    _DEFINE = {"Guest": lambda c, xml: c.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE),
               "Network": lambda c, xml: c.networkDefineXMLFlags(xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE),
               "StoragePool": lambda c, xml: c.storagePoolDefineXML(xml, libvirt.VIR_STORAGE_POOL_DEFINE_VALIDATE),
               "Secret": lambda c, xml: c.secretDefineXML(xml, 0)}

    @_libvirt("define")
    def define(self, kind: str, name: str, xml: str) -> None:
        """Define (or redefine) an object from its whole XML, checked against libvirt's schema."""
        self._DEFINE[kind](self.conn, xml)

    @_libvirt("define")
    def define_secret(self, kind: str, usage: str, xml: str) -> None:
        """Define (or replace, same UUID) a secret; refused when another holds its usage."""
        self.conn.secretDefineXML(xml, 0)

    @_libvirt("read")
    def secret_xml(self, kind: str, usage: str) -> str:
        return self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, usage).XMLDesc(0)

    @_libvirt("undefine")
    def undefine_secret(self, kind: str, usage: str) -> None:
        self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, usage).undefine()

    @_libvirt("set value")
    def set_secret_value(self, kind: str, name: str, value: bytes) -> None:
        self._lookup(kind, name).setValue(value, 0)

    @_libvirt("build")
    def build_pool(self, kind: str, name: str, mode: str = "plain") -> None:
        """virStoragePoolBuild: plain (no flags), no_overwrite or overwrite."""
        self.conn.storagePoolLookupByName(name).build(_BUILD_FLAGS[mode])

    @_libvirt("start")
    def start(self, kind: str, name: str) -> None:
        self._lookup(kind, name).create()

    @_libvirt("stop")
    def stop(self, kind: str, name: str) -> None:
        """Power off a guest, stop a network or pool, at once."""
        self._lookup(kind, name).destroy()

    @_libvirt("suspend")
    def suspend(self, kind: str, name: str) -> None:
        """Pause a running guest (its vCPUs stop; its memory stays)."""
        self.conn.lookupByName(name).suspend()

    @_libvirt("resume")
    def resume(self, kind: str, name: str) -> None:
        self.conn.lookupByName(name).resume()

    @_libvirt("shutdown")
    def shutdown(self, kind: str, name: str) -> None:
        """Ask a guest to shut down (ACPI); it may take its time or ignore it."""
        self.conn.lookupByName(name).shutdown()

    @_libvirt("set autostart")
    def set_autostart(self, kind: str, name: str, flag: bool) -> None:
        self._lookup(kind, name).setAutostart(int(flag))

    @_libvirt("set memory")
    def set_memory(self, kind: str, name: str, kib: int) -> None:
        self.conn.lookupByName(name).setMemoryFlags(kib, LIVE_CONFIG)

    @_libvirt("set vcpus")
    def set_vcpus(self, kind: str, name: str, count: int) -> None:
        self.conn.lookupByName(name).setVcpusFlags(count, LIVE_CONFIG)

    @_libvirt("attach device")
    def attach_device(self, kind: str, name: str, xml: str) -> None:
        self.conn.lookupByName(name).attachDeviceFlags(xml, LIVE_CONFIG)

    @_libvirt("detach device")
    def detach_device(self, kind: str, name: str, xml: str) -> None:
        self.conn.lookupByName(name).detachDeviceFlags(xml, LIVE_CONFIG)

    @_libvirt("update device")
    def update_device(self, kind: str, name: str, xml: str, saved: bool = True) -> None:
        self.conn.lookupByName(name).updateDeviceFlags(xml, LIVE_CONFIG if saved else libvirt.VIR_DOMAIN_AFFECT_LIVE)

    @_libvirt("set metadata")
    def set_metadata(self, kind: str, name: str, element: str | None, prefix: str, namespace: str,
                     live: bool, saved: bool) -> None:
        """Set (None: remove) a guest's metadata element of `namespace`, running and/or saved."""
        flags = (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0) | (libvirt.VIR_DOMAIN_AFFECT_CONFIG if saved else 0)
        self.conn.lookupByName(name).setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, element, prefix,
                                                 namespace, flags)

    @_libvirt("undefine")
    def undefine(self, kind: str, name: str, tpm: bool = False) -> None:
        """Remove a definition (a guest's managed save, NVRAM, snapshot and checkpoint metadata too;
        its TPM state stays unless `tpm`)."""
        obj = self._lookup(kind, name)
        if kind == "Guest":
            tpm_flag = libvirt.VIR_DOMAIN_UNDEFINE_TPM if tpm else libvirt.VIR_DOMAIN_UNDEFINE_KEEP_TPM
            obj.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                              | tpm_flag | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                              | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        else:
            obj.undefine()

    @_libvirt("migrate")
    def migrate(self, kind: str, name: str, dest: "Host", persist_xml: str, address: str | None = None,
                copy: list[str] = ()) -> None:
        """Live-migrate a running guest to `dest` (driven from here, over both connections): the
        guest runs there with `persist_xml` as its saved definition, and is undefined here; its
        memory (and disks' NBD copy) goes to `address` on `dest` when given. The disks `copy`
        names (targets) are copied into same-sized volumes made for them there; the others must
        be on shared storage."""
        params = {libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml}
        flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        if copy:
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy)
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        if address:
            host = f"[{address}]" if ":" in address else address
            params |= {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{host}",
                       libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: address}
        self.conn.lookupByName(name).migrate3(dest.conn, params, flags)

    @_libvirt("undefine")
    def undefine_moved(self, kind: str, name: str) -> None:
        """Remove the definition of a shut-off guest that moved to another host; its NVRAM and TPM
        state stay on this host (they are files, not libvirt objects)."""
        self._lookup(kind, name).undefineFlags(
            libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_KEEP_TPM
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)

    @_libvirt("update")
    def network_update(self, kind: str, name: str, command: str, section: str, xml: str, live: bool) -> None:
        """virNetworkUpdate of one section of a network, saved (and running when `live`)."""
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG | (libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE if live else 0)
        self.conn.networkLookupByName(name).update(_NET_COMMANDS[command], _NET_SECTIONS[section], -1, xml, flags)

    @_libvirt("create")
    def create_volume(self, kind: str, name: str, pool: str, xml: str, prealloc: bool = False) -> None:
        """virStorageVolCreateXML (`prealloc`: qcow2 tables, or all of it, allocated)."""
        flags = libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA if prealloc else 0
        self.conn.storagePoolLookupByName(pool).createXML(xml, flags)

    @_libvirt("clone")
    def clone_volume(self, kind: str, name: str, pool: str, xml: str, from_pool: str, from_volume: str) -> None:
        """virStorageVolCreateXMLFrom: a copy of another volume of the host (converted to the format)."""
        source = self.conn.storagePoolLookupByName(from_pool).storageVolLookupByName(from_volume)
        self.conn.storagePoolLookupByName(pool).createXMLFrom(xml, source, 0)

    @_libvirt("upload")
    def upload_volume(self, kind: str, name: str, pool: str, volume: str, chunks, length: int) -> None:
        """virStorageVolUpload of `length` bytes from offset 0, sent as `chunks` come; the stream is
        aborted when anything fails."""
        vol = self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
        stream = self.conn.newStream(0)
        vol.upload(stream, 0, length, 0)
        try:
            for chunk in chunks:
                sent = 0
                while sent < len(chunk):
                    sent += stream.send(chunk[sent:])
            stream.finish()
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise

    def download_volume(self, kind: str, name: str, pool: str, volume: str) -> Iterator[bytes]:
        """virStorageVolDownload of a whole volume, as chunks while they come; the stream is
        aborted when the reader stops early or anything fails."""
        with _call("download", f"{kind}/{name}"):
            vol = self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
            stream = self.conn.newStream(0)
            vol.download(stream, 0, 0, 0)
        finished = False
        try:
            while True:
                with _call("download", f"{kind}/{name}"):
                    chunk = stream.recv(STREAM_CHUNK)
                if not chunk:
                    break
                yield chunk
            with _call("download", f"{kind}/{name}"):
                stream.finish()
            finished = True
        finally:
            if not finished:
                with contextlib.suppress(libvirt.libvirtError):
                    stream.abort()

    @_libvirt("read")
    def pool_at(self, kind: str, name: str, path: str) -> str | None:
        """The name of the active pool whose directory is `path`, or None."""
        try:
            pool = self.conn.storagePoolLookupByTargetPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _GONE:
                return None
            raise
        return pool.name() if pool.isActive() else None

    @_libvirt("create")
    def open_directory(self, kind: str, name: str, pool: str, path: str) -> None:
        """A transient dir pool `pool` over `path` (made if missing), to reach files there as
        volumes; it goes when stopped."""
        xml = (f"<pool type='dir'><name>{escape(pool)}</name><target><path>{escape(path)}</path></target></pool>")
        self.conn.storagePoolCreateXML(xml, libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)

    @_libvirt("refresh")
    def refresh_pool(self, kind: str, name: str) -> None:
        """Scan a pool's storage again (a file another host made on shared storage shows up)."""
        self.conn.storagePoolLookupByName(name).refresh(0)

    @_libvirt("read")
    def volume_capacity(self, kind: str, name: str, pool: str, volume: str) -> int:
        return self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).info()[1]

    @_libvirt("delete")
    def delete_volume(self, kind: str, name: str, pool: str, volume: str) -> None:
        self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).delete(0)

    @_libvirt("resize")
    def resize_volume(self, kind: str, name: str, pool: str, volume: str, capacity: int, shrink: bool) -> None:
        vol = self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
        vol.resize(capacity, libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if shrink else 0)
