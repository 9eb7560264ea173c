"""Secrets (the Secret kind) on the real daemon: defined with their value from a reference, the
value changed in place and never shown, a private secret made readable by defining it again,
adopted back with a plan that is empty, pruned."""
from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import libvirt
import pytest

from tests.integration.conftest import _conn

pytestmark = pytest.mark.libvirtd

MANIFEST = """\
kind: Host
metadata: {name: local}
spec: {uri: "qemu:///system", instance: P-i}
---
kind: Secret
metadata: {name: P-chap}
spec:
  usage: iscsi
  description: CHAP login of the P target
  value: {env: VRT_CHAP}
  private: PRIVATE
"""


def _secret(name: str):
    conn = _conn()
    return conn, conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, name)


def test_secret_value_is_set_changed_and_never_shown(env, monkeypatch, tmp_path):
    first, second = (f"chap-{uuid.uuid4().hex[:12]}" for _ in range(2))
    monkeypatch.setenv("VRT_CHAP", first)
    env.write(MANIFEST.replace("PRIVATE", "false"))
    name = env.name("chap")
    run, outputs = env.recording()

    saved = tmp_path / "s.plan"
    assert run("plan", str(env.dir), "--out", str(saved)).returncode == 2
    done = run("apply", "--plan", str(saved))
    assert done.returncode == 0, done.stdout + done.stderr
    conn, sec = _secret(name)
    assert sec.value() == first.encode()
    xml = sec.XMLDesc(0)
    assert "private='no'" in xml and "CHAP login" in xml and f"<target>{name}</target>" in xml
    uuid_before = sec.UUIDString()
    assert run("plan", str(env.dir)).returncode == 0

    # another value: planned as a sensitive change, set in place (same UUID)
    monkeypatch.setenv("VRT_CHAP", second)
    done = run("plan", str(env.dir))
    assert done.returncode == 2 and "value: (sensitive value changed)  [live]" in done.stdout, done.stdout
    for fmt in ("--json", "--format=markdown"):
        assert run("plan", str(env.dir), fmt).returncode == 2
    done = run("apply", str(env.dir), "--auto-approve", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    conn, sec = _secret(name)
    assert sec.value() == second.encode() and sec.UUIDString() == uuid_before
    assert run("plan", str(env.dir)).returncode == 0
    assert run("drift", str(env.dir)).returncode == 0

    # readable -> private is made in place; private -> readable again needs a new definition
    env.write(MANIFEST.replace("PRIVATE", "true"))
    env.converge()
    conn, sec = _secret(name)
    with pytest.raises(libvirt.libvirtError, match="private"):
        sec.value()
    env.write(MANIFEST.replace("PRIVATE", "false"))
    done = run("plan", str(env.dir))
    assert "recreate" in done.stdout and "with its value" in done.stdout, done.stdout
    env.converge()
    conn, sec = _secret(name)
    assert sec.value() == second.encode() and sec.UUIDString() == uuid_before

    # saved -> ephemeral: defined again, so no saved file is left to come back after a restart
    env.write(MANIFEST.replace("PRIVATE", "false") + "  ephemeral: true\n")
    assert "recreate" in run("plan", str(env.dir)).stdout
    env.converge()
    conn, sec = _secret(name)
    assert sec.value() == second.encode() and "ephemeral='yes'" in sec.XMLDesc(0)
    assert not Path(f"/etc/libvirt/secrets/{uuid_before}.xml").exists()

    texts = outputs + [saved.read_text()]
    conn = _conn()
    texts += [s.XMLDesc(0) for s in conn.listAllSecrets(0) if env.prefix in (s.usageID() or "")]
    for value in (first, second):
        for encoded in (value, base64.b64encode(value.encode()).decode()):
            assert not [t for t in texts if encoded in t], f"{encoded} shown"


def test_hand_made_secret_is_adopted_and_pruned(env):
    name = env.name("ceph")
    conn = _conn()
    sec = conn.secretDefineXML(f"<secret ephemeral='no' private='yes'><description>by hand</description>"
                               f"<usage type='ceph'><name>{name}</name></usage></secret>", 0)
    sec.setValue(b"hand-made-key", 0)
    env.write(MANIFEST.split("---")[0])
    done = env.run("adopt", f"Secret/{name}", str(env.dir))
    assert done.returncode == 0, done.stdout + done.stderr
    (written,) = env.dir.glob("secret-*.yaml")
    text = written.read_text()
    assert "usage: ceph" in text and "description: by hand" in text and "private: true" in text, text
    assert "value" not in text            # not known, so not managed
    code, doc = env.plan()
    assert code == 0, doc
    written.unlink()
    env.write(MANIFEST.split("---")[0] + """---
kind: Network
metadata: {name: P-n}
spec: {forward: isolated, ipv4: {address: SUBNET.1/24}, autostart: false}
""")
    done = env.apply("--prune", "--allow-destroy")
    assert done.returncode == 0 and f"Secret/{name}" in done.stdout, done.stdout + done.stderr
    with pytest.raises(libvirt.libvirtError):
        _conn().secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, name)


def test_a_vtpm_secret_encrypts_a_running_guests_tpm_state(env, monkeypatch):
    from tests.integration.test_core_loop import small_guest
    monkeypatch.setenv("VRT_VTPM", f"vtpm-{uuid.uuid4().hex[:12]}")
    env.write(small_guest("P-t", "  machine: q35\n  tpm: {model: tpm-crb, secret: P-vtpm}\n") + """---
kind: Secret
metadata: {name: P-vtpm}
spec: {usage: vtpm, value: {env: VRT_VTPM}, private: true}
""")
    code, doc = env.plan()
    assert [c["kind"] for c in doc["changes"]] == ["Secret", "Guest"], doc       # the secret first
    env.converge()
    dom = env.lookup("t")
    conn = _conn()
    sec = conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VTPM, env.name("vtpm"))
    assert dom.isActive() and f"<encryption secret='{sec.UUIDString()}'/>" in dom.XMLDesc(0)
    swtpm = subprocess.run(["pgrep", "-af", f"swtpm.*{dom.UUIDString()}"], capture_output=True, text=True).stdout
    assert "--key" in swtpm or "pwdfd" in swtpm or "keyfile" in swtpm, swtpm      # swtpm got the key
    text = env.readopt(next(env.dir.glob("m.yaml")), "t")
    assert f"secret: {sec.UUIDString()}" in text, text           # the UUID: adopt cannot know the name
    code, doc = env.plan()
    assert code == 0, doc
