"""Host bridges as Bridge documents (the Bridge kind's live side) and their network
configuration files.

The document is the tool's own XML (no libvirt object holds a host bridge), so reading, diff,
adopt and drift work on it as on libvirt's:
  <bridge name="br0"><stp state="on" forward_delay="4"/><mtu size="9000"/>
    <vlan_filtering state="off"/><port name="eth1"/><ip cidr="192.0.2.10/24"/>
    <route family="ipv4" gateway="192.0.2.1"/><persisted digest="..."/></bridge>
Ports are the links enslaved to it but guests' taps (libvirt plugs those), addresses the
permanent global ones (a DHCP lease is not the manifest's), routes the default ones through the
bridge, and `persisted` a digest of the files the host's network configuration keeps it in."""
from __future__ import annotations

import hashlib
import shlex
import subprocess
from markupsafe import escape

from . import netconfig
from .bridgeops import management
from .hostlinks import BridgeError, Link, links_for, ssh_runner
from .live import HostState, LiveObject


def quoteattr(value: str) -> str:
    """An XML attribute value, quoted (xml.sax.saxutils would import urllib.request)."""
    return f'"{escape(value)}"'


def document(link: Link, ports: list[str], persisted: str | None) -> str:
    """The Bridge document of `link` (see the module's doc)."""
    parts = [f'<bridge name={quoteattr(link.name)}>',
             f'<stp state="{"on" if link.stp else "off"}" forward_delay="{link.forward_delay}"/>',
             f'<mtu size="{link.mtu}"/>', f'<vlan_filtering state="{"on" if link.vlan_filtering else "off"}"/>']
    parts += [f"<port name={quoteattr(p)}/>" for p in sorted(ports)]
    parts += [f"<ip cidr={quoteattr(a)}/>" for a in link.addresses]
    parts += [f'<route family="{fam}" gateway={quoteattr(gw)}/>' for fam, gw in sorted(link.gateways.items())]
    parts += [f"<persisted digest={quoteattr(persisted)}/>"] if persisted else []
    return "".join(parts) + "</bridge>"


def read_files(uri: str, paths: list[str]) -> dict[str, str]:
    """The text of those of `paths` that exist on the host."""
    runner = ssh_runner(uri)
    if runner is None:
        return netconfig.read(paths)
    out = {}
    for path in paths:
        done = subprocess.run(runner + [shlex.join(["cat", "--", path])], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            out[path] = done.stdout
    return out


_REMOTE_WRITE = ('set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$d/.vr-XXXXXX"); cat > "$t"; '
                 'chmod "$2" "$t"; mv -f "$t" "$1"')


def write_files(uri: str, files: dict[str, tuple[str, int]]) -> None:
    """Write the tool's files atomically; a file there that is not the tool's is refused."""
    runner = ssh_runner(uri)
    if runner is None:
        netconfig.write(files)
        return
    for path, text in read_files(uri, list(files)).items():
        if not netconfig.is_owned(text):
            raise BridgeError(f"{path} on {uri} is not virt-reconcile's (no ownership line): it is left alone")
    for path, (text, mode) in files.items():
        done = subprocess.run(runner + [shlex.join(["sh", "-c", _REMOTE_WRITE, "sh", path, f"{mode:o}"])],
                              input=text, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BridgeError(f"writing {path} on {uri}: {done.stderr.strip()}")


def remove_files(uri: str, paths: list[str]) -> None:
    """Remove those of `paths` that are the tool's."""
    runner = ssh_runner(uri)
    if runner is None:
        netconfig.remove(paths)
        return
    for path, text in read_files(uri, paths).items():
        if netconfig.is_owned(text):
            subprocess.run(runner + [shlex.join(["rm", "-f", "--", path])], capture_output=True, timeout=60)


def digest(files: dict[str, str | None]) -> str:
    """One hash of the files' text (None: missing), what a Bridge's document compares."""
    blob = "\0".join(f"{path}\0{'' if text is None else text}" for path, text in sorted(files.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_paths(backend: str, name: str, ports: list[str], instance: str) -> list[str]:
    """The files `backend` keeps a bridge with these ports in (none for runtime)."""
    config = netconfig.BridgeConfig(name, tuple(ports), instance=instance)
    try:
        return sorted(netconfig.files(backend, config, {p: "00:00:00:00:00:00" for p in ports}))
    except netconfig.NetconfigError:        # a bridge the backend cannot keep (a name with a dot): none
        return []


def observe(state: HostState, uri: str, backend: str, instance: str) -> None:
    """Add the host's bridges to `state` as Bridge documents, with their links and
    the interfaces carrying the connection to the host; libvirt networks' own bridges (virbrN)
    are theirs, not Bridges. Each document's `persisted` digest covers the text of the files
    `backend` would keep it in (none: runtime)."""
    api = links_for(uri)
    try:
        links = api.read()
    finally:
        api.close()
    state.links, state.mgmt = links, management(links, uri)
    networks = {obj.root.xpath("string(bridge/@name)") for (kind, _), obj in state.objects.items()
                if kind == "Network" and obj.root.xpath("string(forward/@mode)") != "bridge"}
    bridges = {link.name: [other.name for other in links.values() if other.master == link.name and other.kind != "tun"]
               for link in links.values() if link.kind == "bridge" and link.name not in networks}
    paths = {name: config_paths(backend, name, ports, instance) for name, ports in bridges.items()}
    files = read_files(uri, sorted({p for ps in paths.values() for p in ps}))
    for name, ports in bridges.items():
        link = links[name]
        persisted = digest({p: files.get(p) for p in paths[name]}) if paths[name] else None
        state.objects[("Bridge", link.name)] = LiveObject("Bridge", link.name, document(link, ports, persisted), link.up)
