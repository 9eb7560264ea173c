"""Values at the edges of what validation accepts: the real daemon takes every one of them, and
what only the host can refuse (machine types, vCPU limits, its memory, a pool's free space) is
refused by plan, naming file, line and field, before anything changes."""
from __future__ import annotations

import pytest

from tests.integration.conftest import IMAGES

pytestmark = pytest.mark.libvirtd

HOST = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system", instance: P-i}\n'


def test_values_at_the_edges_are_taken_by_the_daemon(env):
    label = "h" * 63
    env.write(HOST + f"""---
kind: Network
metadata: {{name: P-edge}}
spec:
  forward: isolated
  bridge: {env.name("br12")[:15]}
  mtu: 9000
  autostart: false
  ipv4:
    address: SUBNET.1/24
    dhcp:
      hosts: [{{mac: "52:54:00:5e:00:02", ip: SUBNET.12, name: {label}.{label}.example}}]
---
kind: StoragePool
metadata: {{name: P-odd}}
spec: {{path: "{IMAGES}/P-odd dir é&'<>\\"", autostart: false}}
---
kind: Volume
metadata: {{name: P-huge.qcow2}}
spec: {{pool: P-odd, capacity: 2PiB}}
---
kind: Volume
metadata: {{name: P-small.raw}}
spec: {{pool: P-odd, capacity: 1MiB, format: raw}}
---
kind: Guest
metadata: {{name: P-big}}
spec:
  state: shutoff
  machine: q35
  vcpus: 255
  memory: {{current: 1KiB, max: 9007199254740991KiB}}
  disks: [{{volume: P-odd/P-huge.qcow2}}, {{volume: P-odd/P-small.raw}}, {{device: cdrom, path: "{IMAGES}/P-a b&c'd.iso"}}]
  graphics: {{listen: "::1"}}
---
kind: Guest
metadata: {{name: P-pc}}
spec: {{state: shutoff, machine: pc, vcpus: 255, memory: 64MiB}}
""")
    done = env.run("validate", str(env.dir))
    assert done.returncode == 0, done.stderr
    env.converge()
    assert env.conn.networkLookupByName(env.name("edge")).isActive()


def test_what_the_host_refuses_is_a_plan_error_and_nothing_changes(env):
    path = env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-pool}}
spec: {{path: {IMAGES}/P-pool, autostart: false}}
---
kind: Guest
metadata: {{name: P-a}}
spec: {{state: shutoff, machine: pc-q35-1.0, vcpus: 1, memory: 64MiB}}
---
kind: Guest
metadata: {{name: P-c}}
spec: {{state: running, vcpus: 1, memory: 64TiB}}
""")
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1, done.stdout + done.stderr
    err = done.stderr.replace(str(path), "m.yaml")
    assert "m.yaml:11: spec.machine: host 'local' has no machine type 'pc-q35-1.0' (e.g. q35, pc," in err, err
    assert "m.yaml:15: spec.memory.max: 64TiB is more than the" in err and "QEMU cannot start it" in err
    assert env.apply().returncode == 1
    assert not [d for d in env.conn.listAllDomains(0) if env.prefix in d.name()]
    assert not [p for p in env.conn.listAllStoragePools(0) if env.prefix in p.name()]


def test_a_raw_volume_larger_than_its_pools_free_space_is_a_plan_error(env):
    env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-pool}}
spec: {{path: {IMAGES}/P-pool, autostart: false}}
""")
    env.converge()
    free = env.conn.storagePoolLookupByName(env.name("pool")).info()[3]
    env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-pool}}
spec: {{path: {IMAGES}/P-pool, autostart: false}}
---
kind: Volume
metadata: {{name: P-fits.raw}}
spec: {{pool: P-pool, capacity: 1MiB, format: raw}}
---
kind: Volume
metadata: {{name: P-too-big.raw}}
spec: {{pool: P-pool, capacity: {free}, format: raw}}
---
kind: Volume
metadata: {{name: P-sparse.qcow2}}
spec: {{pool: P-pool, capacity: {free * 4}}}
""")
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1
    found = [line.strip() for line in done.stderr.splitlines() if "spec.capacity" in line]
    assert len(found) == 1 and found[0].endswith(" of new fully allocated volumes"), done.stderr
    assert "m.yaml:15: spec.capacity: a fully allocated volume (raw, unless allocation: sparse) takes all of its capacity, and pool" in found[0]
