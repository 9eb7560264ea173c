"""GitOps workflow on the real daemon: prune, protection, status, adopt, forget, saved plans, locks,
partial failure, kill -9."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import libvirt
import pytest

from reconciler import locking
from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import BASE, names_with

pytestmark = pytest.mark.libvirtd

UNPROTECTED = BASE.replace("spec: {pool: P-pool, capacity: 32MiB}", "spec: {pool: P-pool, capacity: 32MiB, protect: false}")
HOST_ONLY = BASE.split("---")[0]


def drop_doc(text: str, start: str) -> str:
    """The manifests without the document that begins with `start`."""
    return "---".join(d for d in text.split("---") if not d.lstrip().startswith(start))


def records_of(env) -> list[str]:
    """The instance's ownership record secrets, as KIND/NAME."""
    usage = f"virt-reconcile/{env.name('i')}/"
    return sorted(s.usageID()[len(usage):] for s in env.conn.listAllSecrets(0) if s.usageID().startswith(usage))


def kinds(doc):
    return [(c["kind"], c["action"], c["name"]) for c in doc["changes"]]


def test_prune_deletes_only_owned_objects_in_reverse_order(env):
    path = env.write(UNPROTECTED)
    env.converge()
    env.conn.networkDefineXML(f"<network><name>{env.name('hand')}</name></network>")   # not ours
    data = f"kind: Volume\nmetadata: {{name: {env.name('data.qcow2')}}}"
    text = drop_doc(path.read_text(), "kind: Guest")
    text = drop_doc(text, data)
    text = drop_doc(text, f"kind: Network\nmetadata: {{name: {env.name('net')}}}")
    path.write_text(text)
    code, doc = env.plan()
    assert code == 0                       # without --prune nothing is deleted
    code, doc = env.plan("--prune")
    assert kinds(doc) == [("Guest", "delete", env.name("vm")),
                          ("Volume", "delete", f"{env.name('pool')}/{env.name('data.qcow2')}"),
                          ("Network", "delete", env.name("net"))]
    env.converge("--prune", "--force-stop", "--shutdown-timeout", "1")
    assert names_with(env) == sorted([env.name("hand"), env.name("pool")])     # no bookkeeping guest
    assert records_of(env) == sorted([f"StoragePool/{env.name('pool')}",
                                      f"Volume/{env.name('pool')}/{env.name('root.qcow2')}"])
    pool = env.conn.storagePoolLookupByName(env.name("pool"))
    assert pool.listVolumes() == [env.name("root.qcow2")]


def test_protected_volume_left_the_manifests_is_a_plan_error(env):
    path = env.write(BASE)
    env.converge()
    vm = "kind: Guest"
    text = drop_doc(drop_doc(path.read_text(), vm), f"kind: Volume\nmetadata: {{name: {env.name('data.qcow2')}}}")
    path.write_text(text)
    done = env.run("plan", str(env.dir), "--prune")
    assert done.returncode == 1
    assert f"Volume/{env.name('pool')}/{env.name('data.qcow2')} left the manifests but is protected" in done.stderr
    assert "protect: false" in done.stderr and "virt-reconcile forget" in done.stderr
    assert env.apply("--prune").returncode == 1
    assert env.lookup("vm").isActive()     # nothing changed


def test_empty_manifests_never_prune_a_host_without_allow_empty(env):
    path = env.write(UNPROTECTED.replace("P-root.qcow2}\nspec: {pool: P-pool, capacity: 64MiB, format: qcow2}",
                                         "P-root.qcow2}\nspec: {pool: P-pool, capacity: 64MiB, format: qcow2, protect: false}"))
    env.converge()
    path.write_text(HOST_ONLY.replace("P-", f"{env.prefix}-"))
    done = env.run("plan", str(env.dir), "--prune")
    assert done.returncode == 1 and "refusing to prune them all" in done.stderr
    env.converge("--prune", "--allow-empty", "--force-stop", "--shutdown-timeout", "1")
    assert names_with(env) == [] and records_of(env) == []      # nothing owned: no bookkeeping left


def test_status_lists_managed_with_commit_and_unmanaged(env):
    env.write(BASE)
    env.converge()
    env.conn.networkDefineXML(f"<network><name>{env.name('hand')}</name></network>")
    done = env.run("status", str(env.dir), "--json")
    entries = {(e["kind"], e["name"]): e for e in json.loads(done.stdout)["hosts"]["local"]}
    assert entries[("Guest", env.name("vm"))]["status"] == "managed"
    assert entries[("Guest", env.name("vm"))]["state"] == "running"
    assert entries[("Network", env.name("hand"))]["status"] == "unmanaged"
    assert ("Guest", f"virt-reconcile-inventory-{env.name('i')}") not in entries
    text = env.run("status", str(env.dir)).stdout
    assert "managed" in text and "unmanaged" in text


def test_adopt_then_plan_shows_no_changes(env):
    env.write(HOST_ONLY)
    net = env.conn.networkDefineXML(
        f"<network><name>{env.name('old')}</name><forward mode='nat'/>"
        f"<ip address='{env.ip(1)}' prefix='24'><dhcp><range start='{env.ip(50)}' end='{env.ip(60)}'/>"
        f"<host mac='52:54:00:5e:01:01' ip='{env.ip(5)}'/></dhcp></ip></network>")
    net.create()
    pool = env.conn.storagePoolDefineXML(
        f"<pool type='dir'><name>{env.name('oldpool')}</name><target><path>/var/lib/libvirt/images/"
        f"{env.name('oldpool')}</path></target></pool>")
    pool.build(0)
    pool.create()
    pool.createXML(f"<volume><name>{env.name('disk.qcow2')}</name><capacity unit='MiB'>16</capacity>"
                   "<target><format type='qcow2'/></target></volume>")
    dom = env.conn.defineXML(
        f"<domain type='kvm'><name>{env.name('oldvm')}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os><devices>"
        f"<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='{env.name('oldpool')}' "
        f"volume='{env.name('disk.qcow2')}'/><target dev='vda' bus='virtio'/></disk>"
        f"<interface type='network'><source network='{env.name('old')}'/><model type='virtio'/></interface>"
        "</devices></domain>")
    uuid = dom.UUIDString()
    for target in ("Network/" + env.name("old"), "StoragePool/" + env.name("oldpool"),
                   f"Volume/{env.name('oldpool')}/{env.name('disk.qcow2')}", "Guest/" + env.name("oldvm")):
        done = env.run("adopt", target, str(env.dir))
        assert done.returncode == 0, done.stderr
    assert len(list(env.dir.glob("*.yaml"))) == 5
    code, doc = env.plan()
    assert code == 0, json.dumps(doc, indent=1)
    assert env.conn.lookupByName(env.name("oldvm")).UUIDString() == uuid
    done = env.run("adopt", "Guest/" + env.name("oldvm"), str(env.dir), "--out", str(env.dir.parent / "x.yaml"))
    assert done.returncode == 1 and "already managed" in done.stderr


def test_forget_releases_an_object(env):
    env.write(BASE)
    env.converge()
    done = env.run("forget", "Guest/" + env.name("vm"), str(env.dir))
    assert done.returncode == 0, done.stderr
    status = json.loads(env.run("status", str(env.dir), "--json").stdout)["hosts"]["local"]
    assert {"kind": "Guest", "name": env.name("vm"), "status": "unmanaged"}.items() <= \
        next(e for e in status if e["name"] == env.name("vm")).items()
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1 and "not managed" in done.stderr


def test_stale_saved_plan_is_refused_naming_the_object(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("current: 128MiB", "current: 160MiB"))
    saved = env.dir.parent / "plan.json"
    assert env.run("plan", str(env.dir), "--out", str(saved)).returncode == 2
    env.conn.networkLookupByName(env.name("net")).setAutostart(1)     # behind the tool's back
    dom = env.conn.lookupByName(env.name("vm"))
    dom.setMemoryFlags(140 * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    done = env.run("apply", "--plan", str(saved))
    assert done.returncode == 1 and "saved plan is stale" in done.stderr
    assert f"local/Guest/{env.name('vm')}" in done.stderr
    assert dom.info()[2] != 160 * 1024


def test_concurrent_applies_serialise(env):
    env.write(BASE)
    cmd = [sys.executable, "-m", "reconciler", "apply", str(env.dir), "--auto-approve"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = locking.lock_name(env.name("i"))
    deadline = time.monotonic() + 60
    while lock not in [s.usageID() for s in env.conn.listAllSecrets(0)] and time.monotonic() < deadline:
        time.sleep(0.01)                                  # the first run holds the host lock now
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (out1, err1, out2, err2)
    assert "waiting for lock" in err2
    assert "No changes" in out2 or "No changes" in out1      # the later one found nothing left to do
    assert env.plan()[0] == 0


def test_stale_lock_is_reported_and_broken_only_by_its_id(env):
    env.write(BASE)
    lock = locking.Lock(env.name("i"), "apply", pid=999999)     # a run that died
    env.conn.secretDefineXML(locking.lock_xml(lock))
    done = env.run("apply", str(env.dir), "--auto-approve", "--lock-timeout", "1")
    assert done.returncode == 1 and lock.id in done.stderr and "STALE" in done.stderr
    done = env.run("unlock", "00000000-0000-0000-0000-000000000000", str(env.dir))
    assert done.returncode == 1 and "not held" in done.stderr
    assert env.run("unlock", lock.id, str(env.dir)).returncode == 0
    env.converge()


def test_partial_failure_skips_dependents_and_continues(env):
    # a pool on the directory of a pool made by hand: valid in the manifest and on the host as
    # plan sees it, but libvirt refuses to define a second pool on the same directory
    shared = IMAGES / env.name("shared")
    env.conn.storagePoolDefineXML(f"<pool type='dir'><name>{env.name('hand')}</name>"
                                  f"<target><path>{shared}</path></target></pool>")
    broken = BASE + f"""---
kind: StoragePool
metadata: {{name: P-bad}}
spec: {{path: {shared}}}
---
kind: Volume
metadata: {{name: P-x.qcow2}}
spec: {{pool: P-bad, capacity: 8MiB}}
---
kind: Guest
metadata: {{name: P-vm2}}
spec:
  vcpus: 1
  memory: 64MiB
  disks: [{{volume: P-bad/P-x.qcow2}}]
"""
    env.write(broken)
    done = env.apply()
    assert done.returncode == 1
    out = done.stdout
    bad, vol = f"local/StoragePool/{env.name('bad')}", f"local/Volume/{env.name('bad')}/{env.name('x.qcow2')}"
    assert f"{bad}: create failed: define StoragePool/{bad.split('/')[-1]}" in out, out
    assert f"{vol}: create skipped: because {bad} did not succeed" in out
    assert f"local/Guest/{env.name('vm2')}: create skipped: because {vol} did not succeed" in out
    assert f"local/Guest/{env.name('vm')}: create done" in out
    assert "no automatic rollback" in out


def test_kill_9_mid_apply_then_rerun_converges_with_everything_owned(env):
    env.write(BASE)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", str(env.dir), "--auto-approve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:               # kill it once the first object exists
        if env.name("net") in [n.name() for n in env.conn.listAllNetworks(0)]:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = env.run("apply", str(env.dir), "--auto-approve", "--lock-timeout", "1")
    if done.returncode != 0:                          # the killed run still holds its lock
        assert "STALE" in done.stderr and "is gone" in done.stderr
        lock_id = done.stderr.split("lock ")[1].split()[0]
        assert env.run("unlock", lock_id, str(env.dir)).returncode == 0
    env.converge()
    status = json.loads(env.run("status", str(env.dir), "--json").stdout)["hosts"]["local"]
    mine = [e for e in status if env.prefix in e["name"]]
    assert mine and all(e["status"] == "managed" for e in mine), mine


def test_records_of_an_older_version_move_from_the_inventory_domain_to_secrets(env):
    """Versions before 0.2 kept pool and volume records in a never-started inventory domain: a plan
    moves them, as they are, to secrets and removes the domain; nothing else changes."""
    from reconciler import ownership
    env.write(BASE.replace("state: running", "state: shutoff"))
    env.converge()
    instance, usage = env.name("i"), f"virt-reconcile/{env.name('i')}/"
    secrets = [s for s in env.conn.listAllSecrets(0) if s.usageID().startswith(usage)]
    before = {}
    xml = ownership.inventory_domain(instance)
    for secret in secrets:                       # the same records, as the old version kept them
        (kind, name), rec = ownership.read_secret_record(secret.XMLDesc(0))
        before[(kind, name)] = rec
        meta = ownership.inventory_with(xml, instance, kind, name, ownership.record_entry(kind, name, rec))
        xml = xml.split("<metadata>")[0] + f"<metadata>{meta}</metadata>" + xml.split("</metadata>")[1]
        secret.undefine()
    env.conn.defineXML(xml)
    assert len(before) == 3                      # the pool and its two volumes
    code, doc = env.plan()
    assert code == 2 and kinds(doc) == [("Guest", "delete", f"virt-reconcile-inventory-{instance}")]
    env.converge()
    assert f"virt-reconcile-inventory-{instance}" not in [d.name() for d in env.conn.listAllDomains(0)]
    after = {}
    for secret in env.conn.listAllSecrets(0):
        if secret.usageID().startswith(usage):
            key, rec = ownership.read_secret_record(secret.XMLDesc(0))
            after[key] = rec
    assert {k: (r.hash, r.applied, r.commit) for k, r in after.items()} == \
        {k: (r.hash, r.applied, r.commit) for k, r in before.items()}
