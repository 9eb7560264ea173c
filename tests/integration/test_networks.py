"""Network modes on the real daemon: a macvtap network over a veth with a running guest on it,
and DNS records and portgroups of a running network changed live (dnsmasq keeps running, the
guest keeps its link), static routes made by a restart; each adopted back with an empty plan."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import _conn
from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def veth(env):
    """A veth pair named after the test (nothing is plugged into its far end)."""
    near, far = f"{env.prefix}a", f"{env.prefix}b"
    subprocess.run(["ip", "link", "add", near, "type", "veth", "peer", "name", far], check=True)
    subprocess.run(["ip", "link", "set", near, "up"], check=True)
    try:
        yield near
    finally:
        subprocess.run(["ip", "link", "del", near], check=False)


def _links() -> list[dict]:
    return json.loads(subprocess.run(["ip", "-d", "-json", "link"], capture_output=True, text=True, check=True).stdout)


def test_macvtap_network_over_a_veth_runs_a_guest(env, veth):
    env.write(small_guest("P-mv", "  interfaces:\n    - {network: P-mvnet}\n") + f"""---
kind: Network
metadata: {{name: P-mvnet}}
spec: {{forward: bridge, interfaces: [{veth}]}}
""")
    env.converge()
    dom = env.lookup("mv")
    assert dom.isActive()
    tap = dom.XMLDesc(0).split("<target dev='")[1].split("'")[0]
    (link,) = [l for l in _links() if l["ifname"] == tap]
    assert link["linkinfo"]["info_kind"] == "macvtap" and link["link"] == veth, link
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    text = env.readopt_as("Network", env.name("mvnet"), BASE.split("---\n")[0])
    assert "forward: bridge" in text and f"interfaces: [{veth}]" in text, text
    code, doc = env.plan()
    assert code == 0, doc


def _bridge_index(net: str) -> int:
    """The network's bridge device's ifindex: a restarted network gets a new bridge."""
    bridge = _conn(readonly=True).networkLookupByName(net).bridgeName()
    return int(open(f"/sys/class/net/{bridge}/ifindex").read())


def test_dns_records_and_portgroups_change_live_routes_by_a_restart(env):
    manifest = small_guest("P-g", "  interfaces:\n    - {network: P-live, portgroup: web}\n") + """---
kind: Network
metadata: {name: P-live}
spec:
  forward: route
  ipv4: {address: SUBNET.1/24, dhcp: {range: [SUBNET.10, SUBNET.20], ranges: [[SUBNET.30, SUBNET.40]]}}
  dns:
    txt: [{name: info.example, value: first}]
  portgroups:
    - {name: web, default: true}
"""
    path = env.write(manifest)
    env.converge()
    net = env.name("live")
    bridge, dom_id = _bridge_index(net), env.lookup("g").ID()

    grown = manifest.replace("    txt: [{name: info.example, value: first}]", """    txt: [{name: info.example, value: first}, {name: more.example, value: second}]
    srv: [{service: ldap, protocol: tcp, target: db.example, port: 389}]""").replace(
        "    - {name: web, default: true}", "    - {name: web, default: true}\n    - {name: db}")
    env.write(grown)
    code, doc = env.plan()
    (change,) = [c for c in doc["changes"] if c["kind"] == "Network"]
    assert change["impact"] == "live" and {c["path"] for c in change["changes"]} >= {
        "dns.txt[1]", "dns.srv[0]", "portgroups[1]"}, change
    env.converge()
    xml = _conn(readonly=True).networkLookupByName(net).XMLDesc(0)
    assert "<txt name='more.example' value='second'/>" in xml and "service='ldap'" in xml and "name='db'" in xml
    assert _bridge_index(net) == bridge and env.lookup("g").ID() == dom_id      # not restarted
    hosts = open(f"/var/lib/libvirt/dnsmasq/{net}.conf").read()
    assert "txt-record=more.example,second" in hosts and "srv-host=_ldap._tcp" in hosts, hosts

    # records and portgroups leave live too
    env.write(manifest)
    code, doc = env.plan()
    (change,) = [c for c in doc["changes"] if c["kind"] == "Network"]
    assert change["impact"] == "live", change
    env.converge()
    assert _bridge_index(net) == bridge and "more.example" not in _conn(readonly=True).networkLookupByName(net).XMLDesc(0)

    # a static route: libvirt cannot add one live, so the network restarts (disruptive) and the
    # running guest's NIC is plugged back
    env.write(manifest.replace("  portgroups:", "  routes: [{address: 10.123.0.0/16, gateway: SUBNET.254}]\n  portgroups:"))
    code, doc = env.plan()
    (change,) = [c for c in doc["changes"] if c["kind"] == "Network"]
    assert change["impact"] == "disruptive", change
    env.converge()
    routes = subprocess.run(["ip", "route", "show", "10.123.0.0/16"], capture_output=True, text=True).stdout
    assert f"via {env.ip(254)}" in routes, routes
    assert env.lookup("g").ID() == dom_id

    text = env.readopt_as("Network", net, BASE.split("---\n")[0])
    assert "ranges:" in text and "name: info.example" in text and "10.123.0.0/16" in text, text
    code, doc = env.plan()
    assert code == 0, doc
    path.unlink(missing_ok=True)
