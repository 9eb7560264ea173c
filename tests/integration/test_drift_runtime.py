"""Drift that sees everything, on the real daemon: a running guest changed live only (cdrom media,
vCPUs) is reported and repaired; `state: paused` is a state; parts no manifest field manages are
listed without making drift red."""
from __future__ import annotations

import json

import libvirt
import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def _drift(env, *extra) -> tuple[int, dict]:
    done = env.run("drift", str(env.dir), "--json", *extra)
    assert done.returncode in (0, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def _guest_changes(doc: dict) -> dict:
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    return {c["path"]: c for c in guest["changes"]}


def test_a_running_guest_changed_live_only_is_drift_and_repair_fixes_it(env):
    media = [IMAGES / f"{env.prefix}-{n}.iso" for n in ("a", "b")]
    for path in media:
        path.write_bytes(b"\0" * 2048)
    env.write(BASE.replace("    - {device: cdrom}", f"    - {{device: cdrom, path: {media[0]}}}"))
    env.converge()
    dom = env.lookup("vm")
    cdrom = next(d for d in dom.XMLDesc(0).split("<disk ")[1:] if "device='cdrom'" in d)
    target = cdrom.split("<target dev='")[1].split("'")[0]
    env.conn.lookupByName(env.name("vm")).updateDeviceFlags(
        f"<disk type='file' device='cdrom'><source file='{media[1]}'/><target dev='{target}' bus='sata'/>"
        "<readonly/></disk>", libvirt.VIR_DOMAIN_AFFECT_LIVE)
    code, report = _drift(env)
    found = [f for f in report["findings"] if f["class"] == "runtime"]
    assert code == 2 and len(found) == 1, report["findings"]
    assert found[0]["changes"] == [{"path": "disks[1].path (running)", "before": str(media[1]),
                                    "after": str(media[0])}]
    code, doc = env.plan()
    change = _guest_changes(doc)["disks[1].path (running)"]
    assert code == 2 and change["impact"] == "live"
    code, report = _drift(env, "--repair")
    assert code == 0, report
    assert str(media[0]) in env.lookup("vm").XMLDesc(0) and str(media[1]) not in env.lookup("vm").XMLDesc(0)

    env.conn.lookupByName(env.name("vm")).setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_LIVE)   # saved: 1
    code, doc = env.plan()
    change = _guest_changes(doc)["vcpus.current (running)"]
    assert (change["before"], change["after"], change["impact"]) == (2, 1, "restart")   # offline needs the guest
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    assert env.lookup("vm").vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 1


def test_paused_is_a_state(env):
    path = env.write(BASE.replace("state: running", "state: paused"))
    env.converge()
    assert env.lookup("vm").state()[0] == libvirt.VIR_DOMAIN_PAUSED
    env.conn.lookupByName(env.name("vm")).resume()
    code, report = _drift(env)
    assert code == 2 and any(f["class"] == "runtime" and "the guest is running; the manifest says paused"
                             in f["reason"] for f in report["findings"]), report["findings"]
    env.converge()                                           # paused again
    assert env.lookup("vm").state()[0] == libvirt.VIR_DOMAIN_PAUSED
    path.write_text(path.read_text().replace("state: paused", "state: running"))
    code, doc = env.plan()
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    assert guest["action"] == "resume" and guest["changes"] == [
        {"path": "state", "before": "paused", "after": "running", "impact": "live"}]
    env.converge()
    assert env.lookup("vm").state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_unmanaged_parts_are_listed_and_never_drift(env):
    env.write(BASE.replace("state: running", "state: shutoff"))
    env.converge()
    disk = IMAGES / f"{env.prefix}-byhand.img"
    disk.write_bytes(b"\0" * 4096)
    env.conn.lookupByName(env.name("vm")).attachDeviceFlags(
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
        "<target dev='vdz' bus='virtio'/></disk>", libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    code, report = _drift(env)
    vm = f"local/Guest/{env.name('vm')}"
    assert code == 0, report["findings"]
    parts = report["hosts"]["local"]["unmanaged"][vm]
    assert "disks[vdz]" in parts and any(p.startswith("devices/controller") for p in parts)
    text = env.run("drift", str(env.dir), "--show-unmanaged").stdout
    line = next(line for line in text.splitlines() if line.startswith(f"{vm} not managed (kept as they are): "))
    assert "disks[vdz]" in line and "controllers[usb:0]" in line, line      # items libvirt or a person added
    status = env.run("status", str(env.dir), "--show-unmanaged").stdout
    assert "disks[vdz]" in status
    plan = env.run("plan", str(env.dir), "--show-unmanaged")
    assert plan.returncode == 0 and "disks[vdz]" in plan.stdout
