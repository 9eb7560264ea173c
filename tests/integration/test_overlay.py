"""A qcow2 overlay on a base volume (the cloud-image layout) on the real daemon: the base is made
first whatever the names, the overlay reads it as its backing file, a running guest's disk is the
overlay with the base below it, and a changed backing is a destructive recreate."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

VOLUMES = """\
---
kind: StoragePool
metadata: {name: P-cloud}
spec: {path: /var/lib/libvirt/images/P-cloud, autostart: false}
---
kind: Volume
metadata: {name: a-overlay.qcow2}
spec: {pool: P-cloud, capacity: 64MiB, backing: P-cloud/z-base.qcow2}
---
kind: Volume
metadata: {name: z-base.qcow2}
spec: {pool: P-cloud, capacity: 64MiB}
"""


def test_an_overlay_guest_runs_on_its_backing_volume(env):
    guest = small_guest("P-cl", "  disks:\n    - {volume: P-cloud/a-overlay.qcow2}\n")
    path = env.write(guest + VOLUMES)
    env.converge()
    pool = f"/var/lib/libvirt/images/{env.prefix}-cloud"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", f"{pool}/a-overlay.qcow2"],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == f"{pool}/z-base.qcow2" and info["format"] == "qcow2", info
    assert info["format-specific"]["data"]["compat"] == "1.1", info     # libvirt's default would be 0.10
    dom = env.lookup("cl")
    assert dom.isActive() and f"<source file='{pool}/z-base.qcow2'" in dom.XMLDesc(0)   # QEMU opened the chain

    other = f"\n---\nkind: Volume\nmetadata: {{name: y-other.qcow2}}\nspec: {{pool: {env.prefix}-cloud, capacity: 64MiB}}\n"
    path.write_text(path.read_text().replace(f"backing: {env.prefix}-cloud/z-base.qcow2",
                                             f"backing: {env.prefix}-cloud/y-other.qcow2") + other)
    code, doc = env.plan()
    overlay = next(c for c in doc["changes"] if c["name"].endswith("a-overlay.qcow2"))
    assert (overlay["action"], overlay["impact"]) == ("recreate", "destructive"), overlay
    assert [c["path"] for c in overlay["changes"]] == ["backing"], overlay
    order = [c["name"] for c in doc["changes"] if c["kind"] == "Volume"]
    assert order.index(f"{env.prefix}-cloud/y-other.qcow2") < order.index(f"{env.prefix}-cloud/a-overlay.qcow2")
