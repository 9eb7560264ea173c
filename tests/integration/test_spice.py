"""A SPICE guest with QXL, sound, USB redirection and the vdagent channel runs on the real daemon;
its password comes from a reference, changes live, and never appears in any output or saved file
of a run; adopt writes the devices back (never the password) and plans empty."""
from __future__ import annotations

import uuid

import libvirt
import pytest

from tests.integration.conftest import _conn
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

SPEC = """\
  machine: q35
  graphics: {type: spice, keymap: de, password: {env: VRT_SPICE_PASSWORD}, streaming: filter}
  video: {model: qxl, heads: 1}
  inputs:
    - {type: tablet, bus: usb}
  sound: {model: ich9}
  usb_redirect: 1
  spice_agent: true
"""


def _secure(name: str, flags: int = 0) -> str:
    conn = _conn()
    try:
        return conn.lookupByName(name).XMLDesc(flags | libvirt.VIR_DOMAIN_XML_SECURE)
    finally:
        conn.close()


def test_spice_guest_runs_and_its_password_is_never_shown(env, monkeypatch, tmp_path):
    first, second, by_hand = (f"pw-{uuid.uuid4().hex[:10]}" for _ in range(3))
    monkeypatch.setenv("VRT_SPICE_PASSWORD", first)
    path = env.write(small_guest("P-desk", SPEC))
    name = env.name("desk")
    outputs, files = [], []

    def run(*args):
        done = env.run(*args)
        outputs.append(done.stdout + done.stderr)
        return done

    saved_plan, report = tmp_path / "desk.plan", tmp_path / "drift.json"
    files += [saved_plan, report]
    assert run("plan", str(env.dir)).returncode == 2
    assert run("plan", str(env.dir), "--format", "markdown").returncode == 2
    assert run("plan", str(env.dir), "--out", str(saved_plan)).returncode == 2
    for fmt in ("text", "json", "markdown"):
        assert run("show", str(saved_plan), "--format", fmt).returncode == 0
    done = run("apply", "--plan", str(saved_plan), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run("plan", str(env.dir)).returncode == 0

    dom = env.lookup("desk")
    assert dom.isActive()
    live = _secure(name)
    for part in ("<graphics type='spice'", f"passwd='{first}'", "keymap='de'", "<streaming mode='filter'/>",
                 "<model type='qxl'", "<sound model='ich9'>", "<redirdev bus='usb' type='spicevmc'>",
                 "name='com.redhat.spice.0'", "<input type='tablet' bus='usb'>"):
        assert part in live, part
    guest_id = dom.ID()

    # a new password reaches the running guest live, and the saved definition
    monkeypatch.setenv("VRT_SPICE_PASSWORD", second)
    code, doc = env.plan()
    outputs.append(str(doc))
    assert code == 2 and [(c["path"], c["impact"]) for c in doc["changes"][0]["changes"]] == \
        [("graphics.password", "live")], doc
    text = run("plan", str(env.dir)).stdout
    assert "graphics.password: (sensitive value changed)" in text, text
    done = run("apply", str(env.dir), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert env.lookup("desk").ID() == guest_id                      # no restart
    assert f"passwd='{second}'" in _secure(name)
    assert f"passwd='{second}'" in _secure(name, libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert run("plan", str(env.dir)).returncode == 0

    # a password changed by hand is drift, shown as a change, never as a value
    saved = _secure(name, libvirt.VIR_DOMAIN_XML_INACTIVE).replace(f"passwd='{second}'", f"passwd='{by_hand}'")
    env.conn.defineXML(saved)
    done = run("drift", str(env.dir), "--report", str(report))
    assert done.returncode != 0 and "graphics.password: (sensitive value changed)" in done.stdout, done.stdout
    done = run("drift", str(env.dir), "--json")
    assert done.returncode != 0
    done = run("apply", str(env.dir), "--auto-approve", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"passwd='{second}'" in _secure(name, libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert run("status", str(env.dir)).returncode == 0

    # adopt writes the devices back, never the password, and plans empty
    assert run("forget", f"Guest/{name}", str(env.dir)).returncode == 0
    host = path.read_text().split("---")[0]
    path.unlink()
    (env.dir / "host.yaml").write_text(host)
    done = run("adopt", f"Guest/{name}", str(env.dir))
    assert done.returncode == 0, done.stderr
    adopted = next(env.dir.glob("guest-*.yaml"))
    files.append(adopted)
    text = adopted.read_text()
    for part in ("type: spice", "keymap: de", "streaming: filter", "model: qxl", "model: ich9", "type: tablet",
                 "usb_redirect: 1", "spice_agent: true"):
        assert part in text, (part, text)
    assert "password" not in text
    assert run("plan", str(env.dir)).returncode == 0

    readable = [env.lookup("desk").XMLDesc(0), env.lookup("desk").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)]
    for secret in (first, second, by_hand):
        for xml in readable:                 # what a read-only connection sees (the owner record too)
            assert secret not in xml
        for out in outputs:
            assert secret not in out, out
        for file in files:
            assert secret not in file.read_text(), file
