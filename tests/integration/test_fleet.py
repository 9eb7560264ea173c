"""Fleets on the real daemon: a GuestSet of guests of one GuestClass, with per-index MACs and DHCP
leases, applies and converges; changing the class changes every guest; shrinking the set leaves
the removed guest kept (pruned with --prune)."""
from __future__ import annotations

import pytest

from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd

FLEET = BASE.split("---\n")[0] + """\
---
kind: Network
metadata: {name: P-net}
spec: {forward: isolated, ipv4: {address: SUBNET.1/24}, autostart: false}
---
kind: GuestClass
metadata: {name: P-small}
spec:
  state: shutoff
  vcpus: 1
  memory: 64MiB
  interfaces: [{network: P-net}]
---
kind: GuestSet
metadata: {name: P-web}
spec:
  count: 3
  template:
    class: P-small
    interfaces:
      - {network: P-net, mac: "52:54:00:6e:00:{{ '%02x' % index }}", ip: "SUBNET.{{ 20 + index }}"}
"""


def test_a_guest_set_of_one_class_converges_and_follows_the_class(env):
    path = env.write(FLEET)
    code, doc = env.plan()
    created = sorted(c["name"] for c in doc["changes"] if c["kind"] == "Guest")
    assert created == [env.name("web-1"), env.name("web-2"), env.name("web-3")]
    env.converge()
    net = env.conn.networkLookupByName(env.name("net")).XMLDesc(0)
    for n in (1, 2, 3):
        assert f"mac='52:54:00:6e:00:0{n}'" in net and f"ip='{env.ip(20 + n)}'" in net
        assert f"52:54:00:6e:00:0{n}" in env.lookup(f"web-{n}").XMLDesc(0)
    path.write_text(path.read_text().replace("memory: 64MiB", "memory: 96MiB"))
    code, doc = env.plan()
    assert sorted(c["name"] for c in doc["changes"]) == created          # the class changes every guest
    env.converge()
    assert all(env.lookup(f"web-{n}").maxMemory() == 96 * 1024 for n in (1, 2, 3))
    path.write_text(path.read_text().replace("count: 3", "count: 2"))
    done = env.run("plan", str(env.dir))
    assert done.returncode == 2 and f"= local/Guest/{env.name('web-3')}" in done.stdout, done.stdout
    env.converge("--prune")
    assert env.name("web-3") not in [d.name() for d in env.conn.listAllDomains(0)]
    net = env.conn.networkLookupByName(env.name("net")).XMLDesc(0)
    assert "<host mac='52:54:00:6e:00:03'" not in net and "<host mac='52:54:00:6e:00:02'" in net
