"""The only module that imports libvirt: bulk reads (observe) and the mutating ops apply runs."""
from __future__ import annotations

import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Callable
from urllib.parse import urlparse

import libvirt
from lxml import etree

from . import deadline, edit, ownership, rng, uris
from .errors import AdapterError, HostError
from .identity import OWNER_NS, OWNER_PREFIX
from .live import HostState, LiveObject, capabilities
from .plan import OpName

libvirt.registerErrorHandler(lambda *_: None, None)   # errors become exceptions, not stderr noise

# A daemon that stops answering (frozen, host gone) is dropped after about
# KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1) seconds; its calls then fail instead of waiting.
KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 3
# Errors that mean "the object went away while we read it" (another client deleted it).
_GONE = {libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_ERR_NO_STORAGE_POOL,
         libvirt.VIR_ERR_NO_STORAGE_VOL}
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
_NET_SECTIONS = {"ip-dhcp-host": libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST}
_NET_COMMANDS = {"add": libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                 "delete": libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                 "modify": libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY}


def _unprefixed(xml: str) -> str:
    """An element without its namespace: setMetadata puts it into the namespace it is given."""
    el = etree.fromstring(xml.encode())
    plain = etree.Element(etree.QName(el).localname, dict(el.attrib))
    plain.text = el.text
    return etree.tostring(plain, encoding="unicode")


@contextmanager
def _call(op: str, target: str):
    try:
        yield
    except libvirt.libvirtError as exc:
        raise AdapterError(op, target, exc.get_error_message() or str(exc), exc.get_error_code()) from None


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
        with _call("read", self.uri):
            state = HostState(self.name, self.uri, capabilities(self.conn.getCapabilities()))
            state.facts.memory_kib = self.conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)["total"]
            for dom in self.conn.listAllDomains(0):
                self._keep(state, _gone(lambda dom=dom: self._domain(dom)))
            for net in self.conn.listAllNetworks(0):
                self._keep(state, _gone(lambda net=net: LiveObject(
                    "Network", net.name(), net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE),
                    bool(net.isActive()), bool(net.autostart()))))
            pools = {}
            for pool in self.conn.listAllStoragePools(0):
                if self._keep(state, _gone(lambda pool=pool: LiveObject(
                        "StoragePool", pool.name(), pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE),
                        bool(pool.isActive()), bool(pool.autostart())))):
                    pools[pool.name()] = pool
            for name in sorted(volume_pools(state) & set(pools)):
                if state.objects[("StoragePool", name)].active and self._volumes(state, name, pools[name]):
                    state.listed_pools.add(name)
        return state

    @staticmethod
    def _keep(state: HostState, obj: LiveObject | None) -> LiveObject | None:
        if obj is not None:
            state.objects[(obj.kind, obj.name)] = obj
        return obj

    @staticmethod
    def _domain(dom) -> LiveObject:
        run_state = dom.state()[0]
        active = run_state != libvirt.VIR_DOMAIN_SHUTOFF
        return LiveObject("Guest", dom.name(), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), active,
                          bool(dom.autostart()) if dom.isPersistent() else False,
                          dom.XMLDesc(0) if active else None, run_state == libvirt.VIR_DOMAIN_PAUSED)

    def _volumes(self, state: HostState, name: str, pool) -> bool:
        """Read one pool's volumes; False when the pool went away or stopped meanwhile."""
        try:
            vols = pool.listAllVolumes(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _GONE | {libvirt.VIR_ERR_OPERATION_INVALID}:
                return False
            raise
        for vol in vols:
            key = f"{name}/{vol.name()}"
            self._keep(state, _gone(lambda vol=vol, key=key: LiveObject("Volume", key, vol.XMLDesc(0), True)))
        return True

    _SAVED_FLAGS = {"Guest": libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE,
                    "Network": libvirt.VIR_NETWORK_XML_INACTIVE, "StoragePool": libvirt.VIR_STORAGE_XML_INACTIVE}

    def saved_xml(self, kind: str, name: str) -> str:
        """The saved definition an update edits: a guest's with its secrets (read-write
        connections only), a network's or pool's inactive one."""
        with _call("read", f"{kind}/{name}"):
            return self._lookup(kind, name).XMLDesc(self._SAVED_FLAGS[kind])

    # --- locking -------------------------------------------------------------------------------

    def try_lock(self, name: str, xml: str) -> str | None:
        """Define the lock domain; None when we got it, else the holder's description."""
        try:
            self.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            return None
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_FAILED:
                raise AdapterError("lock", name, exc.get_error_message()) from None
        return self.read_lock(name) or ""     # "": released meanwhile, the caller tries again

    def unlock(self, name: str, lock_id: str) -> bool:
        """Remove the lock domain if it is the lock `lock_id`; False when it is another."""
        with _call("unlock", name):
            try:
                dom = self.conn.lookupByName(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                raise
            if dom.UUIDString() != lock_id:
                return False
            dom.undefine()
            return True

    def read_lock(self, name: str) -> str | None:
        try:
            return self.conn.lookupByName(name).metadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, None, 0)
        except libvirt.libvirtError:
            return None

    # --- changing ------------------------------------------------------------------------------

    def _lookup(self, kind: str, name: str):
        if kind == "Guest":
            return self.conn.lookupByName(name)
        if kind == "Network":
            return self.conn.networkLookupByName(name)
        if kind == "StoragePool":
            return self.conn.storagePoolLookupByName(name)
        pool, _, vol = name.partition("/")
        return self.conn.storagePoolLookupByName(pool).storageVolLookupByName(vol)

    def run(self, kind: str, name: str, op: OpName, args: dict) -> None:
        """Execute one plan op on one object, through the table of operations (_OPS)."""
        op = OpName(op)
        with _call(op.value, f"{kind}/{name}"):
            _OPS[op](self, kind, name, **args)

    def _op_define_domain(self, kind, name, xml):
        self.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)

    def _op_define_network(self, kind, name, xml):
        self.conn.networkDefineXMLFlags(xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE)

    def _op_define_pool(self, kind, name, xml):
        self.conn.storagePoolDefineXML(xml, libvirt.VIR_STORAGE_POOL_DEFINE_VALIDATE)

    def _op_build_pool(self, kind, name):
        self._lookup(kind, name).build(0)

    def _op_start(self, kind, name):
        self._lookup(kind, name).create()

    def _op_stop(self, kind, name):
        self._lookup(kind, name).destroy()

    def _op_set_autostart(self, kind, name, flag):
        self._lookup(kind, name).setAutostart(int(flag))

    def _op_set_memory(self, kind, name, kib):
        self._lookup(kind, name).setMemoryFlags(kib, LIVE_CONFIG)

    def _op_set_vcpus(self, kind, name, count):
        self._lookup(kind, name).setVcpusFlags(count, LIVE_CONFIG)

    def _op_attach_device(self, kind, name, xml):
        self._lookup(kind, name).attachDeviceFlags(xml, LIVE_CONFIG)

    def _op_update_device(self, kind, name, xml):
        self._lookup(kind, name).updateDeviceFlags(xml, LIVE_CONFIG)

    def _op_set_live_owner(self, kind, name, xml):
        """Give the running guest the saved owner marker (when all changes were made live)."""
        self._lookup(kind, name).setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, _unprefixed(xml),
                                             OWNER_PREFIX, OWNER_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def _op_undefine(self, kind, name):
        obj = self._lookup(kind, name)
        if kind == "Guest":
            obj.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                              | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                              | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        else:
            obj.undefine()

    def _op_adopt_owner(self, kind, name, xml):
        """Put an owner marker on an existing guest (saved and running) or network (saved)."""
        obj = self._lookup(kind, name)
        if kind == "Guest":
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if obj.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            obj.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, _unprefixed(xml), OWNER_PREFIX, OWNER_NS, flags)
        else:
            self._redefine_network_metadata(obj, xml)

    def _op_drop_owner(self, kind, name):
        """Remove the owner marker: the object stays, unmanaged."""
        obj = self._lookup(kind, name)
        if kind == "Guest":
            for flag in (libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_AFFECT_LIVE):
                if flag == libvirt.VIR_DOMAIN_AFFECT_LIVE and not obj.isActive():
                    continue
                obj.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, OWNER_PREFIX, OWNER_NS, flag)
        else:
            self._redefine_network_metadata(obj, None)

    def _redefine_network_metadata(self, net, marker: str | None):
        """libvirt 9.0 has no virNetworkSetMetadata: redefine the saved definition with the marker."""
        xml = edit.apply("Network", net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE), [], marker)
        self.conn.networkDefineXMLFlags(xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE)

    def _op_record(self, kind, name, instance, record):
        """Set one pool's or volume's record in the instance's inventory domain (never started)."""
        self._set_inventory(instance, kind, name, record)

    def _op_forget(self, kind, name, instance):
        self._set_inventory(instance, kind, name, None)

    def _set_inventory(self, instance, kind, name, record):
        try:
            current = self.conn.lookupByName(ownership.inventory_name(instance)).XMLDesc(
                libvirt.VIR_DOMAIN_XML_INACTIVE)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            current = ownership.inventory_domain(instance)
        root = etree.fromstring(current.encode())
        meta = root.find("metadata")
        for child in list(meta):
            meta.remove(child)
        meta.append(etree.fromstring(ownership.inventory_with(current, instance, kind, name, record)))
        self.conn.defineXMLFlags(etree.tostring(root, encoding="unicode"), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)

    def _op_shutdown(self, kind, name, timeout, force):
        """ACPI shutdown, waiting up to `timeout` s; then power off only when `force`."""
        dom = self._lookup(kind, name)
        if dom.isActive():
            dom.shutdown()
        deadline = time.monotonic() + timeout
        while dom.isActive():
            if time.monotonic() > deadline:
                if force:
                    dom.destroy()
                    break
                raise libvirt.libvirtError(f"the guest did not shut down within {timeout} s "
                                           "(use --force-stop to power it off after the timeout)")
            time.sleep(0.5)

    def _op_restart(self, kind, name, timeout, force):
        self._op_shutdown(kind, name, timeout, force)
        self._lookup(kind, name).create()

    def _op_network_update(self, kind, name, command, section, xml, mac):
        net = self._lookup(kind, name)
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        if net.isActive():
            flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        net.update(_NET_COMMANDS[command], _NET_SECTIONS[section], -1, xml, flags)

    def _op_replug_guests(self, kind, name):
        """Put running guests' taps back on a restarted network's bridge (libvirt leaves them
        orphaned). Done with iproute2, so only where the host is this machine."""
        if urlparse(self.uri).hostname not in (None, "", "localhost"):
            return
        bridge = self.conn.networkLookupByName(name).bridgeName()
        for dom in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            root = etree.fromstring(dom.XMLDesc(0).encode())
            taps = root.xpath("devices/interface[@type='network'][source/@network=$net]/target/@dev", net=name)
            for tap in taps:
                done = subprocess.run(["ip", "link", "set", "dev", tap, "master", bridge],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise libvirt.libvirtError(f"re-plugging {tap} into {bridge}: {done.stderr.strip()}")

    def _op_create_volume(self, kind, name, pool, volume, xml, if_missing=False):
        # libvirt 9.0 rejects VIR_STORAGE_VOL_CREATE_VALIDATE, so check the schema here instead.
        problems = rng.errors("Volume", xml)
        if problems:
            raise libvirt.libvirtError("volume XML does not match storagevol.rng: " + "; ".join(problems))
        the_pool = self.conn.storagePoolLookupByName(pool)
        if if_missing and volume in the_pool.listVolumes():
            return
        the_pool.createXML(xml, 0)

    def _op_delete_volume(self, kind, name, pool, volume):
        self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).delete(0)

    def _op_resize_volume(self, kind, name, pool, volume, capacity, shrink):
        vol = self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
        vol.resize(capacity, libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if shrink else 0)


# Every operation a plan may hold, and the method that runs it (edit is apply's: it reads the saved
# definition, edits it and runs a define).
_OPS = {op: getattr(Host, f"_op_{op.value}") for op in OpName if op is not OpName.EDIT}
