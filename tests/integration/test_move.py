"""A guest whose metadata.host changes moves between two libvirtd instances sharing a storage
directory: one `move` action (not a delete and a create), identity and unmanaged settings kept,
ownership records moved, then an empty plan."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import libvirt
import pytest

from reconciler import fields

pytestmark = pytest.mark.libvirtd

HOSTS = """\
kind: Host
metadata: {name: a}
spec: {uri: "qemu:///system", instance: P-i}
---
kind: Host
metadata: {name: b}
spec: {uri: "URI_B", instance: P-i}
"""

PER_HOST = """\
---
kind: StoragePool
metadata: {name: P-shared, host: HOST}
spec: {path: SHARED, autostart: false}
---
kind: Network
metadata: {name: P-net, host: HOST}
spec: {forward: isolated, bridge: P-brHOST, autostart: false}
"""

GUEST = """\
---
kind: Volume
metadata: {name: disk.qcow2, host: WHERE}
spec: {pool: P-shared, capacity: 16MiB}
---
kind: Guest
metadata: {name: P-vm, host: WHERE}
spec:
  state: shutoff
  vcpus: 1
  memory: MEMORY
  disks: [{volume: P-shared/disk.qcow2}]
  interfaces: [{network: P-net}]
"""


def _manifest(uri_b: str, shared: Path, where: str, memory: str = "64MiB") -> str:
    text = HOSTS.replace("URI_B", uri_b) + "".join(PER_HOST.replace("HOST", h) for h in ("a", "b"))
    return (text + GUEST.replace("WHERE", where).replace("MEMORY", memory)).replace("SHARED", str(shared))


@pytest.fixture
def shared(env):
    path = Path("/var/tmp") / f"{env.prefix}-shared"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _stop_networks(uri: str) -> None:
    """A daemon that stops leaves its networks' bridges behind: stop them first."""
    conn = libvirt.open(uri)
    for net in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
        net.destroy()
    conn.close()


def test_a_shut_off_guest_moves_with_its_identity_and_its_volume_record(env, private_daemon, shared):
    env.write(_manifest(private_daemon.uri, shared, "a"))
    try:
        env.converge()
        a, b = libvirt.open("qemu:///system"), libvirt.open(private_daemon.uri)
        dom = a.lookupByName(env.name("vm"))
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, "set by hand", None, None,
                        libvirt.VIR_DOMAIN_AFFECT_CONFIG)          # nothing in the manifest says this
        before = fields.read("Guest", dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        uuid = dom.UUIDString()

        env.write(_manifest(private_daemon.uri, shared, "b", memory="96MiB"))   # moved, and changed
        code, doc = env.plan()
        assert code == 2, json.dumps(doc, indent=1)
        verbs = {(c["host"], c["kind"], c["action"]) for c in doc["changes"]}
        assert verbs == {("b", "Volume", "move"), ("b", "Guest", "move")}, verbs     # no delete, no create
        guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
        assert {"path": "host", "before": "a", "after": "b", "impact": "live"} in guest["changes"]
        assert any(c["path"] == "memory.max" for c in guest["changes"])

        env.converge()
        moved = b.lookupByName(env.name("vm"))
        after = fields.read("Guest", moved.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert moved.UUIDString() == uuid
        assert list(after["interfaces"]) == list(before["interfaces"])             # the same MAC
        assert after["memory"]["max"] == 96 * 1024 ** 2
        assert moved.metadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, None, 0) == "set by hand"
        with pytest.raises(libvirt.libvirtError):
            a.lookupByName(env.name("vm"))
        records = {h: [s.usageID() for s in c.listAllSecrets(0) if s.usageID().endswith("/disk.qcow2")]
                   for h, c in (("a", a), ("b", b))}
        assert records["a"] == [] and len(records["b"]) == 1, records            # the record moved
        assert (shared / "disk.qcow2").exists()
    finally:
        _stop_networks(private_daemon.uri)


def _unshared(uri_b: str, shared: Path, where: str) -> str:
    """_manifest with b's pool of that name over another directory, and a raw disk."""
    text = _manifest(uri_b, shared, where).replace("disk.qcow2", "disk.raw") \
        .replace("capacity: 16MiB}", "capacity: 16MiB, format: raw}")
    other = text.replace(f"metadata: {{name: P-shared, host: b}}\nspec: {{path: {shared},",
                         f"metadata: {{name: P-shared, host: b}}\nspec: {{path: {shared}-b,")
    assert other != text
    return other


def test_a_volume_the_new_host_cannot_see_is_copied_and_the_old_copy_kept(env, private_daemon, shared):
    def manifest(where: str) -> str:
        return _unshared(private_daemon.uri, shared, where)

    env.write(manifest("a"))
    try:
        env.converge()
        with open(shared / "disk.raw", "r+b") as disk:        # data the copy must carry
            disk.seek(1 << 20)
            disk.write(b"written on a")
        env.write(manifest("b"))
        code, doc = env.plan()
        assert code == 2 and {(c["host"], c["kind"], c["action"]) for c in doc["changes"]} == \
            {("b", "Volume", "move"), ("b", "Guest", "move")}, json.dumps(doc, indent=1)
        volume = next(c for c in doc["changes"] if c["kind"] == "Volume")
        assert "its data copied by the move of guest" in volume["reason"] and "the old copy stays" in volume["reason"]
        env.converge()
        with open(f"{shared}-b/disk.raw", "rb") as disk:
            disk.seek(1 << 20)
            assert disk.read(12) == b"written on a"
        b = libvirt.open(private_daemon.uri)
        assert b.lookupByName(env.name("vm")).XMLDesc(0)
        assert env.name("vm") not in [d.name() for d in libvirt.open("qemu:///system").listAllDomains(0)]
        _, doc = env.plan()
        assert [k["address"] for k in doc["kept"]] == [f"a/Volume/{env.name('shared')}/disk.raw"], doc["kept"]
    finally:
        _stop_networks(private_daemon.uri)
        shutil.rmtree(f"{shared}-b", ignore_errors=True)


def test_a_run_that_leaves_the_old_host_out_neither_creates_nor_prunes_a_moving_guest(env, private_daemon, shared):
    """Pull mode: each host applies its own slice (--host). The new host's run cannot see the old
    host, so git (the manifests at the commit it last applied) says the guest comes from there: a
    plan error, not a second guest with the same UUID and MAC and an empty disk. The old host's run
    keeps its guest even with --prune. A run that reads both then moves it."""
    import subprocess

    def commit(where: str) -> None:         # the second commit also adds a network on b
        extra = "---\nkind: Network\nmetadata: {name: P-extra, host: b}\nspec: {forward: isolated, autostart: false}\n"
        env.write(_unshared(private_daemon.uri, shared, where) + (extra if where == "b" else ""))
        for args in (("add", "."), ("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", where)):
            subprocess.run(["git", "-C", str(env.dir), *args], check=True, capture_output=True)

    subprocess.run(["git", "-C", str(env.dir), "init", "-q"], check=True)
    commit("a")
    try:
        env.converge()
        commit("b")
        for extra in ((), ("--auto-approve",)):
            done = env.run("apply" if extra else "plan", str(env.dir), "--host", "b", *extra)
            text = done.stdout + done.stderr
            assert done.returncode == 1 and "Traceback" not in text, text
            assert f"Guest {env.name('vm')} moves to host 'b' from host 'a'" in text, text
            assert f"Volume {env.name('shared')}/disk.raw moves to host 'b' from host 'a'" in text, text
        b = libvirt.open(private_daemon.uri)
        assert env.name("vm") not in [d.name() for d in b.listAllDomains(0)]
        assert not Path(f"{shared}-b/disk.raw").exists()
        assert b.networkLookupByName(env.name("extra")).isActive()     # the rest of b was applied

        done = env.run("apply", str(env.dir), "--host", "a", "--prune", "--allow-destroy", "--auto-approve")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"= a/Guest/{env.name('vm')}  # owned, now declared on host 'b', which this run does not read; " \
            "kept" in done.stdout, done.stdout
        assert libvirt.open("qemu:///system").lookupByName(env.name("vm")).UUIDString()
        assert (shared / "disk.raw").exists()

        code, doc = env.plan()          # a run that reads both hosts: the move
        assert code == 2 and {(c["host"], c["kind"], c["action"]) for c in doc["changes"]} == \
            {("b", "Volume", "move"), ("b", "Guest", "move")}, json.dumps(doc, indent=1)
    finally:
        _stop_networks(private_daemon.uri)
        shutil.rmtree(f"{shared}-b", ignore_errors=True)


@pytest.fixture
def two_daemons(libvirtd, env):
    """Two libvirtds of the test's own that can migrate to each other (host UUIDs of their own, a
    virtlogd each), sharing a directory that libvirt takes for shared storage: a FUSE mount of type
    glusterfs (bindfs), made before they start so both see it."""
    import subprocess
    import uuid as uuid_module
    from tests.helpers import PrivateDaemon
    backing, shared = Path("/var/tmp") / f"{env.prefix}-backing", Path("/var/tmp") / f"{env.prefix}-shared"
    backing.mkdir()
    shared.mkdir()
    subprocess.run(["bindfs", "-o", "allow_other,subtype=glusterfs", str(backing), str(shared)], check=True)
    daemons = []
    try:
        for n in range(2):
            daemons.append(PrivateDaemon(Path(f"/tmp/vrt-daemon-{env.prefix}-{n}"), host_uuid=str(uuid_module.uuid4()),
                                         virtlogd=True, own_logs=True))
        for daemon in daemons:       # probe QEMU now, not inside the test's first define
            conn = libvirt.open(daemon.uri)
            conn.getDomainCapabilities(None, None, None, None, 0)
            conn.close()
        yield daemons, shared
    finally:
        for daemon in daemons:
            try:
                _stop_networks(daemon.uri)
            except libvirt.libvirtError:
                pass
            daemon.stop()
        subprocess.run(["umount", str(shared)], check=False)
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(backing, ignore_errors=True)


def test_a_running_guest_moves_by_live_migration(env, two_daemons):
    (a, b), shared = two_daemons
    def manifest(where: str) -> str:           # both daemons of the test's own; the guest runs
        text = _manifest(b.uri, shared, where).replace('uri: "qemu:///system"', f'uri: "{a.uri}"')
        return text.replace("instance: P-i}", "instance: P-i, migration_address: 127.0.0.1}") \
            .replace("state: shutoff", "state: running")

    env.write(manifest("a"))
    env.converge()
    source, target = libvirt.open(a.uri), libvirt.open(b.uri)
    dom = source.lookupByName(env.name("vm"))
    uuid, before = dom.UUIDString(), fields.read("Guest", dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    env.write(manifest("b"))
    code, doc = env.plan()
    assert code == 2 and {(c["host"], c["kind"], c["action"]) for c in doc["changes"]} == \
        {("b", "Volume", "move"), ("b", "Guest", "move")}, json.dumps(doc, indent=1)
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    assert "it runs: live migration" in guest["reason"]
    env.converge()
    moved = target.lookupByName(env.name("vm"))
    assert moved.isActive() and moved.isPersistent() and moved.UUIDString() == uuid
    assert list(fields.read("Guest", moved.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["interfaces"]) == \
        list(before["interfaces"])
    assert env.name("vm") not in [d.name() for d in source.listAllDomains(0)]


def test_a_running_guest_moves_with_a_copy_of_its_disk(env, two_daemons):
    """No shared storage: the live migration copies the disk (NBD) into the volume made for it."""
    (a, b), shared = two_daemons

    def manifest(where: str) -> str:           # each daemon's pool of that name is its own directory
        text = _manifest(b.uri, shared, where).replace('uri: "qemu:///system"', f'uri: "{a.uri}"')
        text = text.replace("instance: P-i}", "instance: P-i, migration_address: 127.0.0.1}") \
            .replace("state: shutoff", "state: running")
        return text.replace(f"metadata: {{name: P-shared, host: b}}\nspec: {{path: {shared},",
                            f"metadata: {{name: P-shared, host: b}}\nspec: {{path: {shared}/b,") \
            .replace(f"metadata: {{name: P-shared, host: a}}\nspec: {{path: {shared},",
                     f"metadata: {{name: P-shared, host: a}}\nspec: {{path: {shared}/a,")

    env.write(manifest("a"))
    env.converge()
    source, target = libvirt.open(a.uri), libvirt.open(b.uri)
    uuid = source.lookupByName(env.name("vm")).UUIDString()
    env.write(manifest("b"))
    code, doc = env.plan()
    assert code == 2, json.dumps(doc, indent=1)
    volume = next(c for c in doc["changes"] if c["kind"] == "Volume")
    assert f"by the move of guest {env.name('vm')}" in volume["reason"], volume["reason"]
    env.converge()
    moved = target.lookupByName(env.name("vm"))
    assert moved.isActive() and moved.UUIDString() == uuid
    assert (shared / "b" / "disk.qcow2").exists() and (shared / "a" / "disk.qcow2").exists()   # the old copy kept


def _file_in(daemon, path: str) -> bytes | None:
    """A file as a private daemon sees it (its own /var/lib/libvirt), or None."""
    try:
        return Path(f"/proc/{daemon.pid}/root{path}").read_bytes()
    except OSError:
        return None


def test_a_shut_off_uefi_guest_moves_with_its_nvram_and_tpm_state(env, two_daemons):
    """An offline move carries the files a guest's identity lives in besides its definition."""
    import hashlib
    import time
    (a, b), shared = two_daemons

    def manifest(where: str, state: str) -> str:
        text = _manifest(b.uri, shared, where).replace('uri: "qemu:///system"', f'uri: "{a.uri}"')
        return text.replace("state: shutoff", f"state: {state}\n  type: qemu\n  machine: q35\n  firmware: efi\n"
                                              "  secure_boot: false\n  tpm: {model: tpm-crb}")

    env.write(manifest("a", "running"))
    env.converge()
    uuid = libvirt.open(a.uri).lookupByName(env.name("vm")).UUIDString()
    nvram = f"/var/lib/libvirt/qemu/nvram/{env.name('vm')}_VARS.fd"
    tpm = f"/var/lib/libvirt/swtpm/{uuid}/tpm2/tpm2-00.permall"
    for _ in range(100):                   # the firmware and swtpm write their state as the guest starts
        if _file_in(a, nvram) and _file_in(a, tpm):
            break
        time.sleep(0.1)
    env.write(manifest("a", "shutoff"))
    env.converge("--force-stop", "--shutdown-timeout", "1")
    before = {path: hashlib.sha256(_file_in(a, path)).hexdigest() for path in (nvram, tpm)}

    env.write(manifest("b", "shutoff"))
    code, doc = env.plan()
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    assert code == 2 and "with its NVRAM and TPM state" in guest["reason"], json.dumps(doc, indent=1)
    env.converge()
    assert libvirt.open(b.uri).lookupByName(env.name("vm")).UUIDString() == uuid
    after = {path: hashlib.sha256(_file_in(b, path) or b"").hexdigest() for path in (nvram, tpm)}
    assert after == before
    assert not [p.name() for p in libvirt.open(b.uri).listAllStoragePools(0) if p.name().startswith("virt-reconcile-move")]
