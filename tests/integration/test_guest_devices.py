"""Disk driver settings, the guest agent channel, an RNG and a watchdog on the real daemon: a
running guest gets them, a changed cache mode waits for a restart, and a device that leaves the
manifest is removed (three-way) while devices it never named stay."""
from __future__ import annotations

import libvirt
import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

GUEST = small_guest("P-srv", """\
  disks:
    - {path: IMAGE, bus: scsi, cache: none, io: native, discard: unmap, detect_zeroes: unmap, serial: SRV-DATA-1}
  guest_agent: true
  rng: {backend: /dev/urandom}
  watchdog: {model: i6300esb, action: poweroff}
""")


def test_server_devices_apply_live_and_leave(env):
    image = IMAGES / f"{env.prefix}-srv.img"
    image.write_bytes(b"\0" * 1024 * 1024)
    path = env.write(GUEST.replace("IMAGE", str(image)))
    env.converge()
    live = env.lookup("srv").XMLDesc(0)
    assert env.lookup("srv").isActive()
    for part in ("cache='none'", "io='native'", "discard='unmap'", "detect_zeroes='unmap'", "<serial>SRV-DATA-1</serial>",
                 "name='org.qemu.guest_agent.0'", "<rng model='virtio'>", "<watchdog model='i6300esb' action='poweroff'"):
        assert part in live, part
    env.conn.lookupByName(env.name("srv")).attachDeviceFlags(      # a device the manifest never names
        "<channel type='unix'><target type='virtio' name='org.example.by-hand'/></channel>",
        libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    path.write_text(path.read_text().replace("cache: none, io: native", "cache: directsync, io: native")
                    .replace("  rng: {backend: /dev/urandom}\n", ""))
    code, doc = env.plan()
    changes = {c["path"]: c["impact"] for c in doc["changes"][0]["changes"]}
    assert changes == {"disks[0].cache": "restart", "rng": "restart"}, changes
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    saved = env.lookup("srv").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "cache='directsync'" in saved and "<rng" not in saved
    assert "org.example.by-hand" in saved and "org.qemu.guest_agent.0" in saved


def test_direct_kernel_boot_and_boot_menu(env):
    kernel, initrd = IMAGES / f"{env.prefix}-vmlinuz", IMAGES / f"{env.prefix}-initrd"
    for file in (kernel, initrd):
        file.write_bytes(b"\0" * 4096)
    spec = f"""\
  boot_menu: true
  kernel: {kernel}
  initrd: {initrd}
  cmdline: "console=ttyS0 root=/dev/vda1"
"""
    path = env.write(small_guest("P-kern", spec).replace("state: running", "state: shutoff"))
    env.converge()
    saved = env.lookup("kern").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for part in (f"<kernel>{kernel}</kernel>", f"<initrd>{initrd}</initrd>",
                 "<cmdline>console=ttyS0 root=/dev/vda1</cmdline>", "<bootmenu enable='yes'/>"):
        assert part in saved, part
    path.write_text(path.read_text().replace("root=/dev/vda1", "root=/dev/vda2").replace("state: shutoff", "state: running")
                    .replace(str(initrd), str(initrd) + "-missing"))
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1 and "spec.initrd:" in done.stderr and "does not exist" in done.stderr, done.stderr
    path.write_text(path.read_text().replace(str(initrd) + "-missing", str(initrd)).replace("state: running", "state: shutoff"))
    code, doc = env.plan()
    assert [c["path"] for c in doc["changes"][0]["changes"]] == ["cmdline"]
    env.converge()
    assert "<cmdline>console=ttyS0 root=/dev/vda2</cmdline>" in env.lookup("kern").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
