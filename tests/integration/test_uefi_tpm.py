"""UEFI with secure boot and an emulated TPM 2.0 on the real daemon (OVMF, swtpm): the guest
boots with the secure-boot firmware, its NVRAM and TPM state survive a redefine (same inode and
content), an adopted UEFI guest stays UEFI, and deleting the guest keeps its TPM state."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import libvirt
import pytest

from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd

# type qemu: this machine's KVM (nested) has no SMM, which secure boot needs; TCG has it
UEFI = BASE.split("---\n")[0] + """\
---
kind: Guest
metadata: {name: P-sb}
spec:
  state: running
  type: qemu
  machine: q35
  vcpus: 1
  memory: {max: 256MiB}
  firmware: efi
  secure_boot: true
  tpm: {model: tpm-crb, version: "2.0"}
  console: false
"""


def _files(uuid: str, name: str) -> list[Path]:
    nvram = Path(f"/var/lib/libvirt/qemu/nvram/{name}_VARS.fd")
    tpm = sorted(Path(f"/var/lib/libvirt/swtpm/{uuid}").rglob("*.permall"))
    return [nvram, *tpm]


def _stat(paths: list[Path]) -> list[tuple]:
    return [(p, os.stat(p).st_ino, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]


def test_secure_boot_guest_with_tpm_boots_and_keeps_its_state(env):
    path = env.write(UEFI)
    env.converge()
    dom = env.lookup("sb")
    live = dom.XMLDesc(0)
    assert dom.isActive() and "secure='yes'" in live and ".ms.fd</loader>" in live, live   # enrolled keys
    assert "<tpm model='tpm-crb'>" in live
    saved = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "firmware='efi'" in saved and "name='secure-boot'" in saved and "<smm state='on'/>" in saved
    path.write_text(path.read_text().replace("state: running", "state: shutoff"))
    env.converge("--force-stop", "--shutdown-timeout", "1")
    files = _files(dom.UUIDString(), env.name("sb"))
    assert all(p.exists() for p in files) and len(files) == 2, files
    before = _stat(files)
    path.write_text(path.read_text().replace("max: 256MiB", "max: 320MiB"))     # a redefine
    code, doc = env.plan()
    assert code == 2 and [c["path"] for c in doc["changes"][0]["changes"]] == ["memory.current", "memory.max"]
    env.converge()
    assert _stat(files) == before                                   # same files, same content
    saved = env.lookup("sb").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "firmware='efi'" in saved and "name='secure-boot'" in saved and "tpm-crb" in saved

    assert env.run("forget", f"Guest/{env.name('sb')}", str(env.dir)).returncode == 0
    path.unlink()
    (env.dir / "host.yaml").write_text(UEFI.split("---")[0].replace("P-", f"{env.prefix}-"))
    done = env.run("adopt", f"Guest/{env.name('sb')}", str(env.dir))
    assert done.returncode == 0, done.stderr
    text = next(env.dir.glob("guest-*.yaml")).read_text()
    assert "firmware: efi" in text and "secure_boot: true" in text and "model: tpm-crb" in text, text
    code, _ = env.plan()
    assert code == 0

    uuid = env.lookup("sb").UUIDString()
    next(env.dir.glob("guest-*.yaml")).unlink()
    env.converge("--prune", "--allow-empty", "--force-stop", "--shutdown-timeout", "1")
    assert env.name("sb") not in [d.name() for d in env.conn.listAllDomains(0)]
    assert Path(f"/var/lib/libvirt/swtpm/{uuid}").exists()          # deleting keeps the TPM state
    import shutil
    shutil.rmtree(f"/var/lib/libvirt/swtpm/{uuid}", ignore_errors=True)


def test_deleting_a_guest_removes_its_tpm_state_only_when_asked(env):
    path = env.write(small_guest("P-tpm", "  tpm: {model: tpm-crb}\n"))
    env.converge()
    state = Path(f"/var/lib/libvirt/swtpm/{env.lookup('tpm').UUIDString()}")
    assert state.is_dir()                                            # swtpm made it at the start
    path.write_text(path.read_text().split("---")[0])
    code, doc = env.plan("--prune", "--allow-empty", "--delete-tpm-state")
    assert code == 2 and "its TPM state is deleted (--delete-tpm-state)" in doc["changes"][0]["reason"], doc
    env.converge("--prune", "--allow-empty", "--delete-tpm-state", "--force-stop", "--shutdown-timeout", "1")
    assert not state.exists()
