"""A misbehaving host, on real daemons: XML libvirt itself mangled, objects deleted while they are
read, a frozen daemon, unwritable report files, records of objects that are gone, prune of a
paused guest. Each case names what is wrong and the rest of the run goes on."""
from __future__ import annotations

import signal
import threading
import time

import libvirt
import pytest

from reconciler import pipeline
from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd

NET = """\
kind: Network
metadata: {name: P-other, host: local}
spec: {forward: isolated, autostart: false}
"""


def broken_network(env, name: str) -> None:
    """What libvirt 9.0 does with a DHCP host name holding a quote: it writes it unescaped."""
    env.conn.networkDefineXML(
        f"<network><name>{name}</name><ip address='{env.ip(1)}' prefix='24'><dhcp>"
        f"<host mac='52:54:00:00:00:09' name=\"a'b\" ip='{env.ip(9)}'/></dhcp></ip></network>")
    xml = env.conn.networkLookupByName(name).XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    assert "name='a'b'" in xml, "libvirt no longer mangles this: find another malformed definition"


def test_malformed_xml_names_the_object_and_the_rest_goes_on(env):
    broken = env.name("broken")
    broken_network(env, broken)
    env.write(BASE.split("---\n")[0] + "---\n" + NET)
    done = env.run("plan", str(env.dir))
    assert done.returncode == 2, done.stderr
    assert f"Warning: local/Network/{broken} (not in the manifests): libvirt returned XML that is not " \
           "well-formed" in done.stderr
    assert f"local/Network/{env.name('other')}" in done.stdout
    status = env.run("status", str(env.dir))
    assert status.returncode == 0 and f"broken          Network      {broken}" in status.stdout, status.stdout
    drift = env.run("drift", str(env.dir))
    assert drift.returncode == 2 and "ERROR" not in drift.stdout, drift.stdout

    # declared: that object cannot be planned (exit 1), the others still are, and apply does them
    env.write(BASE.split("---\n")[0] + "---\n" + NET + "---\n" + NET.replace("P-other", "P-broken"))
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1
    assert f"Error: local/Network/{broken}: libvirt returned XML that is not well-formed" in done.stderr
    assert f"local/Network/{env.name('other')}" in done.stdout and "Traceback" not in done.stderr
    done = env.apply()
    assert done.returncode == 1 and f"local/Network/{env.name('other')}: create done" in done.stdout
    drift = env.run("drift", str(env.dir))
    assert f"local/Network/{broken} broken:" in drift.stdout


def test_objects_deleted_while_they_are_read_count_as_absent(env):
    """Another client defines and undefines guests, networks and pools as fast as it can while
    plan reads the host: no read fails."""
    env.write(BASE)
    stop = threading.Event()
    churned = [0]

    def churn() -> None:
        conn = libvirt.open("qemu:///system")
        n = 0
        while not stop.is_set():
            n += 1
            name = env.name(f"churn{n % 7}")
            try:
                dom = conn.defineXML(f"<domain type='qemu'><name>{name}</name><memory>1024</memory>"
                                     "<os><type arch='x86_64'>hvm</type></os></domain>")
                net = conn.networkDefineXML(f"<network><name>{name}</name></network>")
                pool = conn.storagePoolDefineXML(f"<pool type='dir'><name>{name}</name><target>"
                                                 f"<path>{IMAGES}/{name}</path></target></pool>")
                dom.undefine()
                net.undefine()
                pool.undefine()
                churned[0] += 1
            except libvirt.libvirtError:
                pass
        conn.close()

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        manifest = pipeline.load([env.dir])
        for _ in range(40):
            pipeline.observe_host(manifest, "local", "qemu:///system")
        for command in ("plan", "status", "drift"):
            done = env.run(command, str(env.dir))
            assert done.returncode in (0, 2) and "Error" not in done.stderr, done.stderr
    finally:
        stop.set()
        thread.join()
    assert churned[0] > 40


def two_hosts(env, uri: str) -> None:
    env.write(f"""\
kind: Host
metadata: {{name: local}}
spec: {{uri: "qemu:///system", instance: P-i}}
---
kind: Host
metadata: {{name: frozen}}
spec: {{uri: "{uri}", instance: P-i, timeout: 3}}
---
{NET}---
kind: Network
metadata: {{name: P-far, host: frozen}}
spec: {{forward: isolated, autostart: false}}
""")


def test_a_frozen_daemon_fails_its_host_only(env, private_daemon):
    two_hosts(env, private_daemon.uri)
    private_daemon.signal(signal.SIGSTOP)
    try:
        for command in ("plan", "status", "drift"):
            done = env.run(command, str(env.dir))
            text = done.stdout + done.stderr
            assert done.returncode == 1, text
            assert f"host 'frozen' ({private_daemon.uri}): no answer within 3 s" in text, text
            assert "Traceback" not in text
        done = env.run("plan", str(env.dir))
        assert f"+ local/Network/{env.name('other')}" in done.stdout
        done = env.apply()
        assert done.returncode == 1 and f"local/Network/{env.name('other')}: create done" in done.stdout
    finally:
        private_daemon.signal(signal.SIGCONT)
    # thawed, it answers again (its first answer probes QEMU: more than 3 s)
    (env.dir / "m.yaml").write_text((env.dir / "m.yaml").read_text().replace("timeout: 3", "timeout: 60"))
    assert env.run("plan", str(env.dir), "--host", "frozen").returncode == 2


def test_keepalive_drops_a_daemon_that_freezes_mid_run(private_daemon):
    from reconciler.adapter import Host
    from reconciler.errors import ReconcilerError
    host = Host("frozen", private_daemon.uri, timeout=120)
    private_daemon.signal(signal.SIGSTOP)
    started = time.monotonic()
    try:
        with pytest.raises(ReconcilerError, match="keepalive"):
            host.observe()
    finally:
        private_daemon.signal(signal.SIGCONT)
        host.close()
    assert time.monotonic() - started < 60


def test_reports_into_a_missing_or_unusable_place_are_clear_errors(env):
    env.write(BASE.split("---\n")[0] + "---\n" + NET)
    env.converge()
    good = env.dir.parent / "metrics.prom"
    assert env.run("drift", str(env.dir), "--metrics", str(good)).returncode == 0
    before = good.read_text()
    a_file = env.dir.parent / "plain-file"
    a_file.write_text("x")
    for option in ("--metrics", "--report"):
        for target in (env.dir.parent / "no" / "such" / "dir" / "out", a_file / "out"):
            done = env.run("drift", str(env.dir), option, str(target))
            assert done.returncode == 1 and f"Error: cannot write {target}:" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
    done = env.run("plan", str(env.dir), "--out", str(a_file / "plan.json"))
    assert done.returncode == 1 and "cannot write the plan" in done.stderr
    assert good.read_text() == before


def test_records_of_objects_gone_from_host_and_manifests_are_dropped(env):
    env.write(BASE)
    env.converge()
    vol = f"{env.name('pool')}/{env.name('data.qcow2')}"
    env.conn.storagePoolLookupByName(env.name("pool")).storageVolLookupByName(env.name("data.qcow2")).delete(0)
    env.write(BASE.replace("---\nkind: Volume\nmetadata: {name: P-data.qcow2}\nspec: {pool: P-pool, capacity: 32MiB}\n", ""))
    drift = env.run("drift", str(env.dir))
    assert f"local/Volume/{vol} missing" in drift.stdout
    done = env.run("plan", str(env.dir), "--prune")     # protected, but gone: never blocks a prune
    assert done.returncode == 2 and "protected" not in done.stderr, done.stderr
    assert "its ownership record is removed" in done.stdout
    env.converge()                                       # without --prune: the record is dropped
    drift = env.run("drift", str(env.dir))
    assert drift.returncode == 0, drift.stdout


def test_prune_powers_off_a_paused_guest_and_a_failure_skips_only_its_dependents(env):
    unprotected = BASE.replace("capacity: 64MiB, format: qcow2}", "capacity: 64MiB, format: qcow2, protect: false}") \
                      .replace("capacity: 32MiB}", "capacity: 32MiB, protect: false}")
    env.write(unprotected + """---
kind: Guest
metadata: {name: P-stubborn}
spec:
  vcpus: 1
  memory: 64MiB
  disks: [{volume: P-pool/P-data.qcow2}]
""")
    env.converge()
    env.conn.lookupByName(env.name("vm")).suspend()
    # keep the host, network and pool: P-vm (paused), P-stubborn (no OS: it ignores the ACPI
    # shutdown) and both volumes are pruned
    env.write(unprotected.split("---\nkind: Volume")[0])
    done = env.apply("--prune", "--shutdown-timeout", "2")
    out = done.stdout
    vm, stubborn, pool = f"local/Guest/{env.name('vm')}", f"local/Guest/{env.name('stubborn')}", env.name("pool")
    assert done.returncode == 1, out + done.stderr
    assert f"{vm}: delete done" in out
    assert f"{stubborn}: delete failed" in out and "did not shut down within 2 s" in out
    assert f"local/Volume/{pool}/{env.name('data.qcow2')}: delete skipped: because {stubborn} did not succeed" in out
    assert f"local/Volume/{pool}/{env.name('root.qcow2')}: delete done" in out
    names = [d.name() for d in env.conn.listAllDomains(0)]
    assert env.name("vm") not in names and env.name("stubborn") in names
