"""Volumes made every way on the real daemon: from an image file and from a URL (checked against
their SHA-256), cloned, sparse or fully allocated, with a mode and owner, and LUKS-encrypted with a
passphrase that never appears anywhere, a guest running on it."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import stat
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import _conn
from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd

HOST = BASE.split("---\n")[0]


def _pool(prefix: str) -> str:
    return f"---\nkind: StoragePool\nmetadata: {{name: P-vols}}\nspec: {{path: /var/lib/libvirt/images/{prefix}-vols}}\n"


def _vol(env, name: str):
    return _conn(readonly=True).storagePoolLookupByName(env.name("vols")).storageVolLookupByName(name)


def _image(tmp_path: Path) -> tuple[Path, str]:
    """A 32 MiB qcow2 image whose first MiB holds 0xab, and its SHA-256."""
    image = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "32M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", str(image)], check=True, capture_output=True)
    return image, hashlib.sha256(image.read_bytes()).hexdigest()


def _holds_pattern(path: str, fmt: str) -> bool:
    done = subprocess.run(["qemu-io", "-r", "-U", "-f", fmt, "-c", "read -P 0xab 0 1M", path],
                          capture_output=True, text=True)
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


@pytest.fixture
def web(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/web (nothing leaves the machine)."""
    root = tmp_path / "web"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_volumes_from_a_file_a_url_and_a_clone(env, tmp_path, web):
    image, digest = _image(tmp_path)
    root, url = web
    (root / "cloud.qcow2").write_bytes(image.read_bytes())
    base = f"/var/lib/libvirt/images/{env.prefix}-vols"
    text = HOST + _pool(env.prefix) + f"""---
kind: Volume
metadata: {{name: from-file.qcow2}}
spec: {{pool: P-vols, capacity: 64MiB, source: {{path: {image}, sha256: {digest}}}}}
---
kind: Volume
metadata: {{name: from-url.qcow2}}
spec: {{pool: P-vols, capacity: 48MiB, source: {{url: "{url}/cloud.qcow2", sha256: {digest}}}}}
---
kind: Volume
metadata: {{name: copy.raw}}
spec: {{pool: P-vols, format: raw, capacity: 80MiB, clone: P-vols/from-file.qcow2, allocation: sparse,
        permissions: {{mode: "0640", owner: 0, group: 0}}}}
---
kind: Volume
metadata: {{name: full.raw}}
spec: {{pool: P-vols, format: raw, capacity: 8MiB}}
"""
    env.write(text)
    done = env.apply()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uploading 100%" in done.stdout and "downloading 100%" in done.stdout, done.stdout
    code, doc = env.plan()
    assert code == 0, json.dumps(doc["changes"], indent=1)
    for name, fmt, capacity in (("from-file.qcow2", "qcow2", 64), ("from-url.qcow2", "qcow2", 48), ("copy.raw", "raw", 80)):
        assert _vol(env, name).info()[1] == capacity * 1024 * 1024, name
        assert _holds_pattern(f"{base}/{name}", fmt), name
    assert stat.S_IMODE(os.stat(f"{base}/copy.raw").st_mode) == 0o640
    assert _vol(env, "copy.raw").info()[2] < 8 * 1024 * 1024              # sparse: most of it is holes
    assert _vol(env, "full.raw").info()[2] >= 8 * 1024 * 1024             # raw is fully allocated by default

    # a mode changed by hand is drift, and apply sets it back in place
    os.chmod(f"{base}/copy.raw", 0o666)
    assert env.run("drift", str(env.dir)).returncode != 0
    code, doc = env.plan()
    (change,) = doc["changes"]
    assert [(c["path"], c["before"], c["after"]) for c in change["changes"]] == [("permissions.mode", "0666", "0640")]
    env.converge()
    assert stat.S_IMODE(os.stat(f"{base}/copy.raw").st_mode) == 0o640

    # adopt writes the volume back; the plan is then empty
    assert env.run("forget", f"Volume/{env.name('vols')}/copy.raw", str(env.dir)).returncode == 0
    start, end = text.index("---\nkind: Volume\nmetadata: {name: copy.raw}"), text.index("---\nkind: Volume\nmetadata: {name: full.raw}")
    env.write(text[:start] + text[end:])
    done = env.run("adopt", f"Volume/{env.name('vols')}/copy.raw", str(env.dir))
    assert done.returncode == 0, done.stdout + done.stderr
    adopted = next(env.dir.glob("volume-*.yaml")).read_text()
    assert "mode: '0640'" in adopted or 'mode: "0640"' in adopted or "mode: 0640" in adopted, adopted
    code, doc = env.plan()
    assert code == 0, doc


def test_an_image_with_another_checksum_is_never_uploaded(env, tmp_path, web):
    image, digest = _image(tmp_path)
    root, url = web
    (root / "cloud.qcow2").write_bytes(image.read_bytes())
    wrong = hashlib.sha256(b"other").hexdigest()
    env.write(HOST + _pool(env.prefix) + f"""---
kind: Volume
metadata: {{name: bad.qcow2}}
spec: {{pool: P-vols, capacity: 64MiB, source: {{url: "{url}/cloud.qcow2", sha256: {wrong}}}}}
---
kind: Volume
metadata: {{name: small.qcow2}}
spec: {{pool: P-vols, capacity: 16MiB, source: {{path: {image}}}}}
""")
    done = env.apply()
    out = done.stdout + done.stderr
    assert done.returncode == 1 and f"has SHA-256 {digest}, not {wrong}" in out, out
    assert "virtual size (33554432 bytes) is more than the volume's capacity (16777216 bytes)" in out, out
    names = _conn(readonly=True).storagePoolLookupByName(env.name("vols")).listVolumes()
    assert "bad.qcow2" not in names and "small.qcow2" not in names


def test_luks_volume_runs_a_guest_and_its_passphrase_is_never_shown(env, monkeypatch, tmp_path):
    first, second = (f"luks-{uuid.uuid4().hex[:12]}" for _ in range(2))
    monkeypatch.setenv("VRT_LUKS", first)
    text = small_guest("P-sealed", "  disks:\n    - {volume: P-vols/sealed.qcow2}\n") + _pool(env.prefix) + """---
kind: Volume
metadata: {name: sealed.qcow2}
spec: {pool: P-vols, capacity: 32MiB, encryption: {passphrase: {env: VRT_LUKS}}, protect: false}
"""
    env.write(text)
    run, outputs = env.recording()

    saved = tmp_path / "luks.plan"
    assert run("plan", str(env.dir), "--out", str(saved)).returncode == 2
    done = run("apply", "--plan", str(saved), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run("plan", str(env.dir)).returncode == 0
    assert run("drift", str(env.dir)).returncode == 0
    path = f"/var/lib/libvirt/images/{env.prefix}-vols/sealed.qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["encrypted"] is True and info["format-specific"]["data"]["encrypt"]["format"] == "luks", info
    assert env.lookup("sealed").isActive()        # QEMU opened it with the volume's secret

    # another passphrase cannot re-key the volume: a destructive recreate, shown as sensitive
    monkeypatch.setenv("VRT_LUKS", second)
    done = run("plan", str(env.dir), "--json")
    (vol,) = [c for c in json.loads(done.stdout)["changes"] if c["kind"] == "Volume"]
    assert vol["action"] == "recreate" and vol["impact"] == "destructive", vol
    assert run("plan", str(env.dir)).returncode == 2
    monkeypatch.setenv("VRT_LUKS", first)

    conn = _conn()
    texts = outputs + [saved.read_text()]
    texts += [s.XMLDesc(0) for s in conn.listAllSecrets(0)]
    for value in (first, second):
        assert not [t for t in texts if value in t], f"{value} shown"

    # pruned with its volume: the LUKS secret goes too
    env.write(HOST + "---\nkind: Network\nmetadata: {name: P-n}\nspec: {forward: isolated, autostart: false}\n")
    done = env.apply("--prune", "--allow-destroy", "--force-stop", "--shutdown-timeout", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [s for s in _conn().listAllSecrets(0) if s.usageID() == path]
