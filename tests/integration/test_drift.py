"""Drift detection on the real daemon: classes after edits made with virsh behind the tool's back,
repair, metrics, watch."""
from __future__ import annotations

import json
import subprocess

import libvirt
import pytest

from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args], check=True, capture_output=True)


def findings(env, *extra):
    report = env.dir.parent / "drift.json"
    done = env.run("drift", str(env.dir), "--report", str(report), *extra)
    doc = json.loads(report.read_text())
    mine = {(f["class"], f["kind"], f["name"].replace(env.prefix + "-", "")): f
            for f in doc["findings"] if env.prefix in f["name"]}
    return done, doc, mine


def test_in_sync_after_apply_and_drift_is_read_only(env):
    env.write(BASE)
    env.converge()
    before = env.lookup("vm").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    done, doc, mine = findings(env)
    assert done.returncode == 0 and mine == {}
    assert doc["hosts"]["local"]["in_sync"] is True
    assert env.lookup("vm").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before


def test_every_drift_class(env):
    path = env.write(BASE)
    env.converge()
    virsh("setmaxmem", env.name("vm"), "300M", "--config")                     # drift
    virsh("net-autostart", env.name("net"))                                   # drift
    virsh("vol-delete", env.name("data.qcow2"), "--pool", env.name("pool"))   # missing
    virsh("destroy", env.name("vm"))                                          # runtime
    env.conn.networkDefineXML(f"<network><name>{env.name('hand')}</name></network>")   # unmanaged
    path.write_text(path.read_text().replace("hosts: [{name: vm,", "hosts: [{name: vm2,"))   # pending
    done, doc, mine = findings(env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert set(mine) == {("drift", "Guest", "vm"), ("drift", "Network", "net"), ("pending", "Network", "net"),
                         ("missing", "Volume", "pool/data.qcow2"),
                         ("runtime", "Guest", "vm"), ("unmanaged", "Network", "hand")}
    assert mine[("drift", "Guest", "vm")]["changes"] == [
        {"path": "memory.max", "before": 300 * 1024**2, "after": 256 * 1024**2}]
    assert mine[("drift", "Network", "net")]["changes"] == [{"path": "autostart", "before": True, "after": False}]
    pending = mine[("pending", "Network", "net")]["changes"]
    assert [c["path"] for c in pending] == ["ipv4.dhcp.hosts[0].name"]
    assert f"{env.name('vm')} drift: changed on the host" in done.stdout
    counts = doc["hosts"]["local"]["counts"]
    assert counts["drift"] >= 2 and counts["missing"] >= 1 and doc["hosts"]["local"]["in_sync"] is False


def test_repair_fixes_drift_only(env):
    path = env.write(BASE)
    env.converge()
    virsh("setmaxmem", env.name("vm"), "300M", "--config")
    virsh("net-autostart", env.name("net"))
    path.write_text(path.read_text().replace("hosts: [{name: vm,", "hosts: [{name: vm2,"))
    done, doc, mine = findings(env, "--repair")
    assert f"local/Guest/{env.name('vm')} repaired: done" in done.stdout
    assert "drifted, but the manifests changed too: not repaired" in done.stderr
    assert ("drift", "Guest", "vm") not in mine and ("drift", "Network", "net") in mine
    assert env.lookup("vm").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).count("<memory unit='KiB'>262144</memory>") == 1


def test_metrics_file_and_last_success_survive_an_error(env):
    path = env.write(BASE)
    env.converge()
    metrics = env.dir.parent / "vr.prom"
    assert env.run("drift", str(env.dir), "--metrics", str(metrics)).returncode == 0
    first = metrics.read_text()
    assert 'virt_reconcile_in_sync{host="local"} 1.0' in first
    assert 'virt_reconcile_run_errors{host="local"} 0.0' in first
    ok_line = next(l for l in first.splitlines() if l.startswith("virt_reconcile_last_success"))
    path.write_text(path.read_text().replace('uri: "qemu:///system"', 'uri: "qemu+unix:///system?socket=/nope"'))
    done = env.run("drift", str(env.dir), "--metrics", str(metrics))
    assert done.returncode == 1 and "ERROR" in done.stdout
    second = metrics.read_text()
    assert 'virt_reconcile_run_errors{host="local"} 1.0' in second
    assert 'virt_reconcile_in_sync{host="local"} 0.0' in second
    assert ok_line in second                      # the last success is kept
    assert [p.name for p in metrics.parent.iterdir() if p.name.startswith(".vr.prom")] == []


def test_watch_runs_repeatedly(env):
    env.write(BASE)
    env.converge()
    metrics = env.dir.parent / "w.prom"
    done = env.run("watch", str(env.dir), "--interval", "0.2", "--iterations", "2", "--metrics", str(metrics))
    assert done.returncode == 0
    assert done.stdout.count("host local: in sync") == 2 and metrics.exists()
