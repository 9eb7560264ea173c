"""Pools on real block storage: fs and disk pools on loop devices, a logical pool's volume group,
an iSCSI pool on a local tgt target with CHAP (a Secret) and a guest running on its LUN, a netfs
pool defined; a device holding other data is never formatted unless the manifest says so; each
adopted back with a plan that is empty."""
from __future__ import annotations

import uuid

import libvirt
import pytest

from tests.integration.conftest import _conn
from tests.integration.storage import LUN_VOLUME, blkid_type, initiators, iscsi_target, loop_device
from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd

HOST = BASE.split("---\n")[0]


def _pool(name: str):
    return _conn(readonly=True).storagePoolLookupByName(name)


def test_fs_pool_formats_a_blank_device_and_mounts_it(env):
    with loop_device(f"{env.prefix}-fs") as dev:
        mount = f"/var/tmp/{env.prefix}-fsmnt"
        env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-fs}}
spec: {{type: fs, path: {mount}, source: {{devices: [{dev}], format: ext4}}}}
---
kind: Volume
metadata: {{name: data.qcow2}}
spec: {{pool: P-fs, capacity: 16MiB}}
""")
        env.converge()
        assert blkid_type(dev) == "ext4"
        pool = _pool(env.name("fs"))
        assert pool.isActive() and pool.storageVolLookupByName("data.qcow2")
        assert f"{dev} {mount} ext4" in open("/proc/mounts").read()

        text = env.readopt_as("StoragePool", env.name("fs"), HOST)
        assert "type: fs" in text and f"devices: [{dev}]" in text and "format: ext4" in text, text
        code, doc = env.plan()
        assert code == 0, doc
        env.run("apply", str(env.dir), "--auto-approve", "--prune", "--allow-destroy", "--allow-empty")


def test_a_device_holding_other_data_is_formatted_only_when_the_manifest_says_so(env):
    with loop_device(f"{env.prefix}-old") as dev:
        assert _run_mkfs(dev) == "ext2"
        manifest = HOST + f"""---
kind: StoragePool
metadata: {{name: P-keep}}
spec: {{type: fs, path: /var/tmp/{env.prefix}-keep, source: {{devices: [{dev}], format: ext4}}}}
"""
        env.write(manifest)
        done = env.apply()
        assert done.returncode == 1, done.stdout + done.stderr
        assert "never formatted unless the manifest says overwrite: true" in done.stdout + done.stderr
        assert blkid_type(dev) == "ext2"                 # untouched

        env.write(manifest.replace("format: ext4}", "format: ext4}, overwrite: true"))
        code, doc = env.plan()
        (pool,) = [c for c in doc["changes"] if c["kind"] == "StoragePool"]
        assert pool["impact"] == "destructive", pool
        assert env.apply().returncode != 0 and blkid_type(dev) == "ext2"    # needs --allow-destroy
        env.converge("--allow-destroy")
        assert blkid_type(dev) == "ext4" and _pool(env.name("keep")).isActive()
        # built and running: a later apply formats nothing (the device holds what the pool wants)
        env.write(manifest.replace("format: ext4}", "format: ext4}, overwrite: true, autostart: false"))
        env.converge("--allow-destroy")
        assert blkid_type(dev) == "ext4"


def _run_mkfs(dev: str) -> str:
    import subprocess
    subprocess.run(["mkfs.ext2", "-q", "-F", dev], check=True, capture_output=True)
    return blkid_type(dev)


def test_disk_pool_labels_a_blank_device(env):
    with loop_device(f"{env.prefix}-disk") as dev:
        env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-disk}}
spec: {{type: disk, source: {{devices: [{dev}], format: gpt}}}}
""")
        env.converge()
        assert blkid_type(dev) == "gpt" and _pool(env.name("disk")).isActive()
        text = env.readopt_as("StoragePool", env.name("disk"), HOST)
        assert "type: disk" in text and "format: gpt" in text, text
        code, doc = env.plan()
        assert code == 0, doc


def test_logical_pool_builds_its_volume_group(env):
    with loop_device(f"{env.prefix}-pv") as dev:
        vg = f"{env.prefix}-vg"
        env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-lvm}}
spec: {{type: logical, source: {{devices: [{dev}], name: {vg}}}}}
""")
        env.converge()
        assert blkid_type(dev) == "LVM2_member"
        pool = _pool(env.name("lvm"))
        assert pool.isActive() and f"<path>/dev/{vg}</path>" in pool.XMLDesc(0)
        text = env.readopt_as("StoragePool", env.name("lvm"), HOST)
        assert f"name: {vg}" in text and f"devices: [{dev}]" in text, text
        code, doc = env.plan()
        assert code == 0, doc
        _conn().storagePoolLookupByName(env.name("lvm")).destroy()


def test_iscsi_pool_with_chap_and_a_guest_on_its_lun(env, monkeypatch):
    password = uuid.uuid4().hex[:16]
    monkeypatch.setenv("VRT_CHAP_PASSWORD", password)
    with iscsi_target(env.prefix, chap=(f"{env.prefix}u", password)) as iqn:
        manifest = small_guest("P-lun", f"  disks:\n    - {{volume: P-san/{LUN_VOLUME}}}\n") + f"""---
kind: Secret
metadata: {{name: P-chap}}
spec: {{usage: iscsi, value: {{env: VRT_CHAP_PASSWORD}}, private: true}}
---
kind: StoragePool
metadata: {{name: P-san}}
spec:
  type: iscsi-direct
  source:
    host: 127.0.0.1
    target: {iqn}
    initiator: iqn.2026-11.test.vrt:{env.prefix}-host
    auth: {{username: {env.prefix}u, secret: P-chap}}
"""
        env.write(manifest)
        code, doc = env.plan()
        assert [c["kind"] for c in doc["changes"]] == ["Secret", "StoragePool", "Guest"], doc
        env.converge()
        pool = _pool(env.name("san"))
        assert pool.isActive() and LUN_VOLUME in pool.listVolumes()
        dom = env.lookup("lun")
        assert dom.isActive() and f"iqn.2026-11.test.vrt:{env.prefix}-host" in initiators(iqn)   # QEMU logged in
        out = env.run("plan", str(env.dir), "--json").stdout + env.run("drift", str(env.dir)).stdout
        assert password not in out

        # a wrong password is refused by the target at the pool's next start, not hidden
        dom = _conn().lookupByName(env.name("lun"))
        dom.destroy()
        _conn().storagePoolLookupByName(env.name("san")).destroy()
        monkeypatch.setenv("VRT_CHAP_PASSWORD", "wrong-password-1")
        env.write(manifest)
        done = env.apply()
        assert done.returncode == 1 and "Authentication failure" in done.stdout + done.stderr, done.stdout
        assert "wrong-password-1" not in done.stdout + done.stderr
        monkeypatch.setenv("VRT_CHAP_PASSWORD", password)
        env.converge()
        dom.destroy()


def test_netfs_pool_is_defined_and_its_mount_failure_named(env):
    """No NFS server can run on this kernel: the pool is defined (libvirt checks its XML) and
    the mount's failure is reported for the pool, the run's other objects going on."""
    env.write(HOST + f"""---
kind: StoragePool
metadata: {{name: P-nfs}}
spec: {{type: netfs, path: /var/tmp/{env.prefix}-nfs, source: {{host: 127.0.0.1, dir: /export, format: nfs}}}}
""")
    done = env.apply()
    assert done.returncode == 1 and f"StoragePool/{env.name('nfs')}" in done.stdout + done.stderr
    xml = _pool(env.name("nfs")).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
    assert "<host name='127.0.0.1'/>" in xml and "<dir path='/export'/>" in xml and "<format type='nfs'/>" in xml
