"""Persistent bridge configuration (reconciler.netconfig): golden files per backend, the formats'
own parsers where this machine has them, validation, and owned-only atomic file writes.
Regenerate the golden files with VR_UPDATE_GOLDEN=1 (or --update-golden)."""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import netconfig
from reconciler.errors import ReconcilerError
from reconciler.netconfig import BridgeConfig, NetconfigError
from tests.helpers import DATA

GOLDEN = DATA / "golden" / "netconfig"
DISK_BACKENDS = ("ifupdown", "networkd", "nm", "wicked")
MACS = {"eno1": "3C:EC:EF:00:00:01", "eno3": "3c:ec:ef:00:00:03"}

STATIC = BridgeConfig(
    name="br0", ports=("eno1", "eno2.30"), stp=True, forward_delay=4, mtu=9000,
    address="static", addresses=("192.0.2.10/24", "2001:db8::10/64"),
    gateway="192.0.2.1", gateway6="2001:db8::1", dns=("192.0.2.53", "2001:db8::53"),
    mac_from="eno1")
DHCP = BridgeConfig(name="br1", ports=("eno3",), address="dhcp")


def case(backend: str, name: str) -> BridgeConfig:
    """The golden bridges; wicked has no per-interface DNS, so its static case has none."""
    bridge = {"static": STATIC, "dhcp": DHCP}[name]
    return replace(bridge, dns=()) if backend == "wicked" else bridge


def rendered(backend: str, name: str) -> dict[str, tuple[str, int]]:
    return netconfig.files(backend, case(backend, name), MACS)


def update_wanted(request) -> bool:
    return os.environ.get("VR_UPDATE_GOLDEN") == "1" or request.config.getoption("--update-golden")


def golden_tree(root: Path) -> dict[str, str]:
    return {"/" + str(p.relative_to(root)): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["static", "dhcp"])
@pytest.mark.parametrize("backend", DISK_BACKENDS)
def test_golden_files(backend, name, request):
    """The golden directory is the tree the backend's files make below /."""
    root = GOLDEN / backend / name
    want = {path: text for path, (text, _mode) in rendered(backend, name).items()}
    if update_wanted(request) or not root.exists():
        shutil.rmtree(root, ignore_errors=True)
        for path, text in want.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    assert golden_tree(root) == want, f"{root} differs (VR_UPDATE_GOLDEN=1 to rewrite)"


def test_paths_and_modes():
    assert set(rendered("networkd", "static")) == {
        "/etc/systemd/network/60-vr-br0.netdev", "/etc/systemd/network/60-vr-br0.network",
        "/etc/systemd/network/60-vr-br0-eno1.network", "/etc/systemd/network/60-vr-br0-eno2.30.netdev",
        "/etc/systemd/network/60-vr-br0-eno2.30.network", "/etc/systemd/network/60-vr-br0-eno2.network"}
    assert set(rendered("nm", "static")) == {
        f"/etc/NetworkManager/system-connections/vr-br0{s}.nmconnection" for s in ("", "-eno1", "-eno2.30")}
    assert set(rendered("wicked", "static")) == {
        f"/etc/sysconfig/network/{f}" for f in ("ifcfg-br0", "ifroute-br0", "ifcfg-eno1", "ifcfg-eno2.30", "ifcfg-eno2")}
    assert set(rendered("ifupdown", "dhcp")) == {"/etc/network/interfaces.d/vr-br1"}
    for backend in DISK_BACKENDS:
        for path, (_text, mode) in rendered(backend, "static").items():
            assert mode == (0o600 if backend == "nm" else 0o644), path


@pytest.mark.parametrize("backend", DISK_BACKENDS)
def test_every_file_starts_with_the_marker(backend):
    for path, (text, _mode) in rendered(backend, "static").items():
        assert text.splitlines()[0] == (
            "# managed by virt-reconcile (instance default): Bridge br0; edits are overwritten"), path
        assert netconfig.owner(text) == ("default", "br0")


def test_runtime_writes_nothing(tmp_path):
    assert netconfig.files("runtime", STATIC) == {}
    assert netconfig.write(netconfig.files("runtime", DHCP), root=str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []


def test_mac_is_taken_by_name_on_ifupdown_and_by_address_elsewhere():
    assert "bridge_hw eno1" in rendered("ifupdown", "static")["/etc/network/interfaces.d/vr-br0"][0]
    vlan_mac = replace(STATIC, mac_from="eno2.30")
    assert "bridge_hw eno2\n" in netconfig.files("ifupdown", vlan_mac)["/etc/network/interfaces.d/vr-br0"][0]
    netdev = netconfig.files("networkd", vlan_mac, {"eno2": "3c:ec:ef:00:00:02"})["/etc/systemd/network/60-vr-br0.netdev"][0]
    assert "MACAddress=3c:ec:ef:00:00:02" in netdev
    assert "MACAddress" not in netconfig.files("networkd", replace(STATIC, mac_from=None))[
        "/etc/systemd/network/60-vr-br0.netdev"][0]


# --- the formats' own parsers ------------------------------------------------------------------

def _ifupdown_file(tmp_path: Path, name: str) -> tuple[Path, str]:
    bridge = case("ifupdown", name)
    (path, (text, _mode)), = rendered("ifupdown", name).items()
    target = tmp_path / Path(path).name
    target.write_text(text, encoding="utf-8")
    return target, bridge.name


@pytest.mark.parametrize("name", ["static", "dhcp"])
def test_ifupdown_parses_the_file(tmp_path, name):
    """ifquery shows each option as ifup reads it; ifup --no-act accepts every method."""
    path, bridge = _ifupdown_file(tmp_path, name)
    query = subprocess.run(["ifquery", "-i", str(path), bridge], capture_output=True, text=True, check=True)
    options = [tuple(line.split(": ", 1)) for line in query.stdout.splitlines() if ": " in line]
    plan = subprocess.run(["ifup", "--no-act", "-i", str(path), "--state-dir", str(tmp_path), bridge],
                          capture_output=True, text=True)
    steps = plan.stdout + plan.stderr
    assert plan.returncode == 0 and "ifup:" not in steps, steps
    if name == "static":
        for option in [("address", "192.0.2.10"), ("gateway", "192.0.2.1"), ("bridge_ports", "eno1 eno2.30"),
                       ("bridge_stp", "on"), ("bridge_fd", "4"), ("bridge_hw", "eno1"), ("mtu", "9000"),
                       ("dns-nameservers", "192.0.2.53 2001:db8::53"), ("address", "2001:db8::10"),
                       ("gateway", "2001:db8::1"), ("pre-up", "ip link set dev eno2 mtu 9000")]:
            assert option in options
        assert "ip -6 addr add 2001:db8::10/64  dev br0  nodad" in steps, "ifup must not wait for DAD on a bridge"
        assert steps.index("ip link set dev eno2 mtu 9000") < steps.index("if-pre-up.d"), "parent MTU before the hook"
    else:
        assert ("bridge_ports", "eno3") in options
        assert "dhclient -4" in steps and "accept_ra=2" in steps


def test_networkd_reads_every_file_and_builds_the_bridges(tmp_path):
    """systemd-networkd itself, in private net and mount namespaces (veth stand-ins for the NICs,
    tmpfs over its config and runtime dirs, read-only sysfs so it does not wait for udev): it
    logs every key it rejects, and builds what the files say. This kernel has no 8021q, so the
    VLAN port itself cannot be made."""
    for name in ("static", "dhcp"):
        for path, (text, _mode) in rendered("networkd", name).items():
            (tmp_path / Path(path).name).write_text(text, encoding="utf-8")
    nics = " && ".join(f"ip link add eno{n} type veth peer name peer{n}" for n in (1, 2, 3))
    script = (f"{nics} && mount -t tmpfs tmpfs /etc/systemd/network && cp {tmp_path}/* /etc/systemd/network/ && "
              "mount -t tmpfs tmpfs /run/systemd && mount -t sysfs -o ro sysfs /sys && "
              "SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_TARGET=console timeout 5 /lib/systemd/systemd-networkd; "
              "ip -j -d link show")
    run = subprocess.run(["timeout", "60", "unshare", "--net", "--mount", "--propagation", "private",
                          "sh", "-c", script], capture_output=True, text=True)
    complaints = [line for line in run.stderr.splitlines()
                  if "/etc/systemd/network/" in line and re.search(r"ignoring|[Ff]ailed|[Ii]nvalid|[Uu]nknown", line)]
    assert complaints == []
    links = {link["ifname"]: link for link in json.loads(run.stdout)}
    br0 = links["br0"]
    assert (br0["address"], br0["mtu"]) == ("3c:ec:ef:00:00:01", 9000)
    assert br0["linkinfo"]["info_data"]["stp_state"] == 1
    assert br0["linkinfo"]["info_data"]["forward_delay"] == 400
    assert (links["eno1"].get("master"), links["eno1"]["mtu"]) == ("br0", 9000)
    assert (links["eno2"].get("master"), links["eno2"]["mtu"]) == (None, 9000)
    assert links["eno3"].get("master") == "br1"
    assert links["br1"]["linkinfo"]["info_data"]["stp_state"] == 0


def _keyfile(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("name", ["static", "dhcp"])
def test_nm_keyfiles_parse_as_ini(name):
    files = rendered("nm", name)
    bridge = case("nm", name)
    profile = _keyfile(files[f"/etc/NetworkManager/system-connections/vr-{bridge.name}.nmconnection"][0])
    assert profile["connection"]["type"] == "bridge"
    assert profile["connection"]["interface-name"] == bridge.name
    for port in bridge.ports:
        keyfile = _keyfile(files[f"/etc/NetworkManager/system-connections/vr-{bridge.name}-{port}.nmconnection"][0])
        assert keyfile["connection"]["master"] == profile["connection"]["uuid"]
        assert keyfile["connection"]["slave-type"] == "bridge"
    if name == "static":
        assert profile["ipv4"]["address1"] == "192.0.2.10/24,192.0.2.1"
        assert profile["bridge"]["forward-delay"] == "4" and profile["ethernet"]["mtu"] == "9000"


@pytest.mark.parametrize("name", ["static", "dhcp"])
def test_wicked_files_are_shell_assignments(name, tmp_path):
    """No wicked on Debian: check the ifcfg files are what its parser expects (KEY='value' lines
    that a shell sources) and hold the documented variables."""
    files = rendered("wicked", name)
    for path, (text, _mode) in files.items():
        body = [line for line in text.splitlines()[1:] if line]
        if "/ifroute-" in path:
            assert all(re.fullmatch(r"default \S+ - br0", line) for line in body), text
            continue
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*='[^']*'", line) for line in body), text
        target = tmp_path / Path(path).name
        target.write_text(text, encoding="utf-8")
        subprocess.run(["sh", "-n", str(target)], check=True)
    bridge = dict(re.findall(r"^([A-Z_0-9]+)='([^']*)'$", files[f"/etc/sysconfig/network/ifcfg-{case('wicked', name).name}"][0], re.M))
    if name == "static":
        assert bridge == {"STARTMODE": "auto", "BOOTPROTO": "static", "IPADDR_0": "192.0.2.10/24",
                          "IPADDR_1": "2001:db8::10/64", "BRIDGE": "yes", "BRIDGE_PORTS": "eno1 eno2.30",
                          "BRIDGE_STP": "on", "BRIDGE_FORWARDDELAY": "4", "MTU": "9000",
                          "LLADDR": "3c:ec:ef:00:00:01"}
    else:
        assert bridge["BOOTPROTO"] == "dhcp" and bridge["BRIDGE_PORTS"] == "eno3"


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"address": "static", "addresses": ()}, "needs at least one address"),
    ({"address": "manual"}, "address must be one of"),
    ({"addresses": ("192.0.2.10",)}, "not an address/prefix"),
    ({"addresses": ("192.0.2.10/24", "192.0.2.10/24")}, "listed twice"),
    ({"gateway": "2001:db8::1"}, "gateway '2001:db8::1' is not an IPv4 address"),
    ({"gateway": "198.51.100.1"}, "in none of the IPv4 subnets"),
    ({"addresses": ("192.0.2.10/24",), "dns": ("192.0.2.53",)}, "gateway6 2001:db8::1 needs an IPv6 address"),
    ({"addresses": ("192.0.2.10/24",), "gateway6": None}, "dns server 2001:db8::53 has no address"),
    ({"address": "dhcp"}, "addresses and gateways need address: static"),
    ({"address": "none", "addresses": (), "gateway": None, "gateway6": None}, "dns needs address: dhcp or static"),
    ({"dns": ("dns.example",)}, "is not an IP address"),
    ({"forward_delay": 1}, "forward_delay 1 is out of range (2-30 s with STP on)"),
    ({"forward_delay": 31, "stp": False}, "out of range (0-30 s with STP off)"),
    ({"mtu": 60}, "mtu 60 is out of range"),
    ({"mtu": 1000}, "below IPv6's minimum"),
    ({"mac_from": "eno9"}, "mac_from eno9 is not a port"),
    ({"ports": ("eno1", "eno1")}, "listed twice"),
    ({"ports": ("br0",), "mac_from": None}, "its own port"),
    ({"ports": ("eno1", "eno2.5000")}, "must be a VLAN named parent.VID"),
    ({"ports": ("eno1", "eno2.x")}, "must be a VLAN named parent.VID"),
    ({"name": "bridge-too-long-0"}, "is not an interface name"),
    ({"name": "br0\n    up reboot"}, "is not an interface name"),
    ({"instance": "a b"}, "instance 'a b' is not a plain name"),
])
def test_validation_refuses(changes, message):
    with pytest.raises(NetconfigError) as caught:
        netconfig.validate(replace(STATIC, **changes))
    assert message in str(caught.value)
    assert isinstance(caught.value, ReconcilerError)


@pytest.mark.parametrize("backend, changes, message", [
    ("ifupdown", {"name": "br.0"}, "ifupdown skips interfaces.d files with a dot"),
    ("wicked", {}, "wicked has no per-interface DNS"),
    ("wicked", {"dns": (), "vlan_filtering": True}, "no VLAN filtering"),
    ("bogus", {}, "unknown network backend 'bogus'"),
])
def test_backend_cannot_express(backend, changes, message):
    with pytest.raises(NetconfigError, match=re.escape(message)):
        netconfig.files(backend, replace(STATIC, **changes), MACS)


@pytest.mark.parametrize("backend", ["networkd", "nm", "wicked"])
def test_mac_from_needs_the_port_address_where_a_port_cannot_be_named(backend):
    bridge = replace(STATIC, dns=())
    with pytest.raises(NetconfigError, match="mac_from eno1 needs that port's MAC address"):
        netconfig.files(backend, bridge)
    with pytest.raises(NetconfigError, match="not a MAC address"):
        netconfig.files(backend, bridge, {"eno1": "3c:ec:ef:00:00"})


def test_valid_variants_pass():
    for bridge in (STATIC, DHCP, BridgeConfig(name="br2", ports=()),
                   replace(STATIC, gateway6="fe80::1"), replace(STATIC, stp=False, forward_delay=0),
                   replace(STATIC, addresses=("2001:db8::10/64",), gateway=None, dns=("2001:db8::53",))):
        for backend in ("ifupdown", "networkd", "nm"):
            netconfig.files(backend, bridge, MACS)


# --- files on disk -----------------------------------------------------------------------------

def test_write_is_atomic_and_only_when_different(tmp_path):
    files = rendered("nm", "static")
    assert sorted(netconfig.write(files, root=str(tmp_path))) == sorted(files)
    for path, (text, mode) in files.items():
        target = tmp_path / path.lstrip("/")
        assert target.read_text(encoding="utf-8") == text
        assert target.stat().st_mode & 0o7777 == mode == 0o600
    assert netconfig.write(files, root=str(tmp_path)) == []

    bridge_path = "/etc/NetworkManager/system-connections/vr-br0.nmconnection"
    target = tmp_path / bridge_path.lstrip("/")
    inode = target.stat().st_ino
    changed = dict(files, **{bridge_path: (files[bridge_path][0].replace("stp=true", "stp=false"), 0o600)})
    assert netconfig.write(changed, root=str(tmp_path)) == [bridge_path]
    assert target.stat().st_ino != inode, "rewritten in place, not renamed over"
    assert "stp=false" in target.read_text(encoding="utf-8")

    target.chmod(0o644)
    assert netconfig.write(changed, root=str(tmp_path)) == [bridge_path]
    assert target.stat().st_mode & 0o7777 == 0o600
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_write_refuses_a_foreign_file_and_writes_nothing(tmp_path):
    files = rendered("wicked", "static")
    foreign = tmp_path / "etc/sysconfig/network/ifcfg-eno1"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("STARTMODE='auto'\nBOOTPROTO='dhcp'\n", encoding="utf-8")
    with pytest.raises(NetconfigError, match="/etc/sysconfig/network/ifcfg-eno1: exists and is not managed"):
        netconfig.write(files, root=str(tmp_path))
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["ifcfg-eno1"]
    assert foreign.read_text(encoding="utf-8") == "STARTMODE='auto'\nBOOTPROTO='dhcp'\n"


def test_marker_must_be_the_first_line():
    text = rendered("ifupdown", "static")["/etc/network/interfaces.d/vr-br0"][0]
    assert netconfig.is_owned(text)
    assert not netconfig.is_owned("# local notes\n" + text)
    assert not netconfig.is_owned("auto br0\niface br0 inet dhcp\n")


def test_keyfile_rewritten_by_nmcli_stays_owned():
    """nmcli drops comments when it saves a profile; the [user] key keeps the ownership."""
    text = rendered("nm", "static")["/etc/NetworkManager/system-connections/vr-br0.nmconnection"][0]
    assert netconfig.owner(text.split("\n", 1)[1]) == ("default", "br0")


def test_write_refuses_another_instances_file(tmp_path):
    files = rendered("ifupdown", "dhcp")
    netconfig.write(files, root=str(tmp_path))
    other = netconfig.files("ifupdown", replace(DHCP, instance="lab"))
    with pytest.raises(NetconfigError, match="managed by virt-reconcile instance default, not lab"):
        netconfig.write(other, root=str(tmp_path))


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    files = rendered("ifupdown", "dhcp")
    netconfig.write(files, root=str(tmp_path))
    (path, (text, mode)), = files.items()

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(netconfig.os, "replace", broken)
    with pytest.raises(OSError):
        netconfig.write({path: (text + "# more\n", mode)}, root=str(tmp_path))
    target = tmp_path / path.lstrip("/")
    assert target.read_text(encoding="utf-8") == text
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_remove_deletes_only_owned_files(tmp_path):
    files = rendered("networkd", "static")
    netconfig.write(files, root=str(tmp_path))
    foreign = "/etc/systemd/network/10-eno1.network"
    (tmp_path / foreign.lstrip("/")).write_text("[Match]\nName=eno1\n", encoding="utf-8")
    paths = [*files, foreign, "/etc/systemd/network/absent.network"]
    assert netconfig.remove(paths, root=str(tmp_path), instance="lab") == []
    assert sorted(netconfig.remove(paths, root=str(tmp_path))) == sorted(files)
    assert netconfig.read(paths, root=str(tmp_path)) == {foreign: "[Match]\nName=eno1\n"}


def test_read_returns_existing_files(tmp_path):
    files = rendered("wicked", "dhcp")
    assert netconfig.read(files, root=str(tmp_path)) == {}
    netconfig.write(files, root=str(tmp_path))
    assert netconfig.read([*files, "/etc/sysconfig/network/ifcfg-nothing"], root=str(tmp_path)) == {
        path: text for path, (text, _mode) in files.items()}


def test_paths_must_be_absolute(tmp_path):
    with pytest.raises(NetconfigError, match="not an absolute path"):
        netconfig.write({"etc/x": ("x", 0o644)}, root=str(tmp_path))
    with pytest.raises(NetconfigError, match="not an absolute path"):
        netconfig.read(["/etc/../../x"], root=str(tmp_path))


def test_a_symlink_is_neither_followed_nor_replaced(tmp_path):
    link = tmp_path / "etc/network/interfaces.d/vr-br1"
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NetconfigError, match="not a regular file"):
        netconfig.write(rendered("ifupdown", "dhcp"), root=str(tmp_path))
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()


def test_vlan_parent_that_is_also_a_port_gets_one_file():
    bridge = BridgeConfig(name="br3", ports=("eno2", "eno2.30", "eno2.40"))
    network = netconfig.files("networkd", bridge)
    parent = network["/etc/systemd/network/60-vr-br3-eno2.network"][0]
    assert "Bridge=br3\nVLAN=eno2.30\nVLAN=eno2.40\n" in parent
    assert sum(path.endswith(".network") for path in network) == 4
    wicked = netconfig.files("wicked", bridge)
    assert "STARTMODE='hotplug'" in wicked["/etc/sysconfig/network/ifcfg-eno2"][0]


def test_a_bridge_without_ports():
    bridge = BridgeConfig(name="br4", ports=())
    assert "bridge_ports none" in netconfig.files("ifupdown", bridge)["/etc/network/interfaces.d/vr-br4"][0]
    assert "BRIDGE_PORTS=''" in netconfig.files("wicked", bridge)["/etc/sysconfig/network/ifcfg-br4"][0]
    assert len(netconfig.files("networkd", bridge)) == 2 and len(netconfig.files("nm", bridge)) == 1
