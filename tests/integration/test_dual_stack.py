"""A dual-stack NAT network with a DNS domain, hosts and forwarders on the real daemon: it starts
with IPv4 and IPv6 (DHCPv6 range), a DNS host is added and another removed live while a guest
runs on it (dnsmasq answers for the new name; the network and the guest keep running), and adopt
writes the network back and plans empty."""
from __future__ import annotations

import libvirt
import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

NETWORK = """\
---
kind: Network
metadata: {name: P-ds}
spec:
  forward: nat
  bridge: P-dsb
  autostart: false
  ipv4:
    address: SUBNET.1/24
    dhcp: {range: [SUBNET.100, SUBNET.150]}
  ipv6:
    address: fd7e:ONE::1/64
    dhcp: {range: ["fd7e:ONE::100", "fd7e:ONE::1ff"]}
  dns:
    domain: lab.example
    hosts:
      - {ip: SUBNET.5, names: [db, db.lab.example]}
      - {ip: SUBNET.7, names: [old]}
    forwarders: [192.0.2.53]
"""


def test_dual_stack_network_and_dns_hosts_changed_live(env):
    one = f"{0x100 + int(env.ip(0).split('.')[2]):x}"      # an IPv6 group libvirt writes as it is (never 0)
    text = small_guest("P-dsg", "  interfaces: [{network: P-ds}]\n") + NETWORK.replace("ONE", one)
    path = env.write(text)
    env.converge()
    net = env.conn.networkLookupByName(env.name("ds"))
    live = net.XMLDesc(0)
    for part in (f"<ip family='ipv6' address='fd7e:{one}::1' prefix='64'>", "<domain name='lab.example' localOnly='yes'/>",
                 "<forwarder addr='192.0.2.53'/>", "<hostname>db.lab.example</hostname>"):
        assert part in live, part
    guest_id = env.lookup("dsg").ID()

    path.write_text(path.read_text().replace(f"      - {{ip: {env.ip(7)}, names: [old]}}\n",
                                             f"      - {{ip: {env.ip(6)}, names: [web, web.lab.example]}}\n"))
    code, doc = env.plan()
    net_change = next(c for c in doc["changes"] if c["kind"] == "Network")
    removed = "dns.hosts[" + env.ip(7).replace(".", "_") + "]"       # no longer listed: named by its key
    assert {c["path"]: c["impact"] for c in net_change["changes"]} == {"dns.hosts[1]": "live", removed: "live"}, \
        net_change
    env.converge()
    assert env.lookup("dsg").ID() == guest_id and env.lookup("dsg").isActive()
    hosts = open(f"/var/lib/libvirt/dnsmasq/{env.name('ds')}.addnhosts").read()
    assert f"{env.ip(6)}\tweb\tweb.lab.example" in hosts and "old" not in hosts, hosts

    assert env.run("forget", f"Network/{env.name('ds')}", str(env.dir)).returncode == 0
    path.write_text(path.read_text().split("---")[0])              # the Host only (the guest stays, kept)
    done = env.run("adopt", f"Network/{env.name('ds')}", str(env.dir))
    assert done.returncode == 0, done.stderr
    text = next(env.dir.glob("network-*.yaml")).read_text()
    for part in (f'address: "fd7e:{one}::1/64"', "domain: lab.example", "names: [web, web.lab.example]", "192.0.2.53"):
        assert part in text, (part, text)
    code, doc = env.plan()
    assert code == 0, doc
