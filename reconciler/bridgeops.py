"""Making a host bridge what the manifest says (converge), undoing a change (restore: the
rollback), deleting it (release), and telling whether the host can still be reached after a
change that moved the interface carrying the connection to it."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from urllib.parse import urlparse

from . import hostnet, netconfig
from .hostlinks import BridgeError, Link, Links, ssh_runner


def converge(links: Links, want: dict) -> None:
    """Make bridge `want["name"]` have what `want` states (None: left as it is): created, its
    options, ports (written whole: a port's address the bridge takes moves with it), static
    addresses and default routes, and up."""
    name, state = want["name"], links.read()
    if name not in state:
        links.add_bridge(name)
        state = links.read()
    bridge = state[name]
    if bridge.kind != "bridge":
        raise BridgeError(f"{name} exists on the host and is not a bridge ({bridge.kind or 'a NIC'})")
    changed = {option: want[option] for option, have in (("stp", bridge.stp), ("forward_delay", bridge.forward_delay),
                                                         ("vlan_filtering", bridge.vlan_filtering))
               if want.get(option) is not None and want[option] != have}
    if changed:
        links.set_bridge(name, **changed)
    if want.get("ports") is not None:
        _ports(links, state, name, want)
    if want.get("mtu") and bridge.mtu != want["mtu"]:
        for port in want.get("ports") or []:
            links.set_mtu(port, want["mtu"])
        links.set_mtu(name, want["mtu"])
    if want.get("mac_from") and state[want["mac_from"]].mac and bridge.mac != state[want["mac_from"]].mac:
        links.set_mac(name, state[want["mac_from"]].mac)
    links.set_up(name)
    if want.get("addresses") is not None:
        have = links.read()[name].addresses
        for cidr in [a for a in want["addresses"] if a not in have]:
            links.add_address(name, cidr)
        for cidr in [a for a in have if a not in want["addresses"]]:
            links.del_address(name, cidr)
    gateways = links.read()[name].gateways
    for family in ("ipv4", "ipv6"):
        key = "gateway" if family == "ipv4" else "gateway6"
        if key in want and want[key] != gateways.get(family):
            links.set_gateway(name, family, want[key])


def _ports(links: Links, state: dict[str, Link], name: str, want: dict) -> None:
    wanted = want["ports"]
    for port in wanted:
        vlan = netconfig.vlan_of(port)
        if port not in state and vlan and vlan[0] in state:     # a VLAN port: made on its parent
            links.add_vlan(port, *vlan)
            state = links.read()
        if port not in state:
            raise BridgeError(f"the port {port} of bridge {name} is not on the host")
        link = state[port]
        if link.master == name:
            continue
        moving = [a for a in link.addresses if a in (want.get("addresses") or [])]
        gateways = dict(link.gateways)
        for cidr in moving:
            links.del_address(port, cidr)
        links.set_master(port, name)
        links.set_up(port)
        for cidr in moving:                 # the host keeps its address: on the bridge now
            links.add_address(name, cidr)
        links.set_up(name)
        for family, gateway in gateways.items():
            if moving and want.get("gateway" if family == "ipv4" else "gateway6") == gateway:
                links.set_gateway(name, family, gateway)
    for link in state.values():       # guests' taps (tun) are libvirt's, never the manifest's ports
        if link.master == name and link.name not in wanted and link.kind != "tun":
            links.set_master(link.name, None)


def restore(links: Links, before: dict[str, Link], name: str) -> None:
    """Put the links a change of bridge `name` touched back as `before` had them (rollback)."""
    now = links.read()
    for link in now.values():                # ports that were not the bridge's leave it
        if link.master == name and before.get(link.name) and before[link.name].master != name:
            links.set_master(link.name, before[link.name].master)
    if name not in before and name in now:
        links.delete(name)
    now = links.read()
    for old in before.values():
        cur = now.get(old.name)
        if cur is None:
            continue
        if cur.master != old.master and old.master is not None and old.master in now:
            links.set_master(old.name, old.master)
        for cidr in [a for a in old.addresses if a not in cur.addresses]:
            links.add_address(old.name, cidr)
        for cidr in [a for a in cur.addresses if a not in old.addresses]:
            links.del_address(old.name, cidr)
        if old.up:
            links.set_up(old.name)
        for family, gateway in old.gateways.items():
            if cur.gateways.get(family) != gateway:
                links.set_gateway(old.name, family, gateway)


def release(links: Links, name: str) -> None:
    """Delete bridge `name`, its ports released first (they keep no address of the bridge's)."""
    state = links.read()
    if name not in state:
        return
    for link in state.values():
        if link.master == name:
            links.set_master(link.name, None)
    links.delete(name)


def management(links: dict[str, Link], uri: str) -> set[str]:
    """The interfaces that carry the connection to the host: the one holding the address the URI
    names (qemu+ssh), or on this machine those with a default route (an operator's session)."""
    if hostnet.is_local(uri):
        return {link.name for link in links.values() if link.gateways}
    host = urlparse(uri).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()
    return {link.name for link in links.values() if any(a.split("/")[0] in addresses for a in link.addresses)}


def reachable(uri: str, gateway: str | None, timeout: float) -> bool:
    """The host can be reached again within `timeout` s: over ssh (a qemu+ssh host), or, on this
    machine, its default gateway answers a ping."""
    runner = ssh_runner(uri)
    if runner is None and not gateway:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ping(gateway) if runner is None else _ssh_true(runner):
            return True
        time.sleep(0.5)
    return False


def _ssh_true(runner: list[str]) -> bool:
    try:
        return subprocess.run(runner + ["true"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ping(address: str, wait: float = 1.0) -> bool:
    """One ICMP echo to an IPv4 address answered within `wait` s (a raw socket: root)."""
    packet = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1) + b"virt-reconcile"
    checksum = sum(struct.unpack(f"!{len(packet) // 2}H", packet))
    checksum = (checksum >> 16) + (checksum & 0xFFFF)
    packet = packet[:2] + struct.pack("!H", ~(checksum + (checksum >> 16)) & 0xFFFF) + packet[4:]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            sock.settimeout(wait)
            sock.sendto(packet, (address, 0))
            end = time.monotonic() + wait
            while time.monotonic() < end:
                data, peer = sock.recvfrom(1024)
                header = data[(data[0] & 0x0F) * 4:]
                if peer[0] == address and header[:1] == b"\x00":       # an echo reply from it
                    return True
    except OSError:
        return False
    return False


