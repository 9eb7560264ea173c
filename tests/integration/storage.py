"""Real block storage for pool tests: loop devices on sparse files, and a local iSCSI target
(Linux tgt, loopback only; libvirt's iscsi-direct pool logs in with libiscsi, no kernel
initiator needed). Everything made here is removed afterwards, also when the test fails."""
from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path
from typing import Iterator

SCRATCH = Path("/var/tmp")
LUN_VOLUME = "unit:0:0:1"       # LUN 1 as a libvirt volume


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=check)


@contextlib.contextmanager
def loop_device(name: str, mib: int = 64) -> Iterator[str]:
    """A loop device on a sparse file SCRATCH/name.img of `mib` MiB; detached and deleted after."""
    image = SCRATCH / f"{name}.img"
    with open(image, "wb") as out:
        out.truncate(mib * 1024 * 1024)
    device = _run("losetup", "-f", "--show", str(image)).stdout.strip()
    try:
        yield device
    finally:
        for mount in _run("findmnt", "-rn", "-S", device, "-o", "TARGET", check=False).stdout.split():
            _run("umount", mount, check=False)
        for vg in _run("pvs", "--noheadings", "-o", "vg_name", device, check=False).stdout.split():
            _run("vgremove", "-f", vg, check=False)
        _run("pvremove", "-ff", "-y", device, check=False)
        _run("losetup", "-d", device, check=False)
        image.unlink(missing_ok=True)


def blkid_type(device: str) -> str:
    """What the device holds (ext4, gpt, LVM2_member...), '' when blank."""
    found = _run("blkid", "-p", "-o", "export", device, check=False).stdout
    match = re.search(r"^(?:TYPE|PTTYPE)=(\S+)$", found, re.M)
    return match.group(1) if match else ""


def _tgtadm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("tgtadm", "--lld", "iscsi", *args, check=check)


def _tgtd_up() -> bool:
    return _tgtadm("--op", "show", "--mode", "system", check=False).returncode == 0


@contextlib.contextmanager
def iscsi_target(prefix: str, chap: tuple[str, str] | None = None, mib: int = 64) -> Iterator[str]:
    """A target iqn.2026-11.test.vrt:PREFIX on 127.0.0.1:3260 with LUN 1 on a sparse file, open to
    any initiator (or to the CHAP user given); yields its IQN. tgtd is started when it is not
    running, and stopped again when it was started here and serves no other target."""
    started = None
    if not _tgtd_up():
        started = subprocess.Popen(["tgtd", "-f", "--iscsi", "portal=127.0.0.1:3260"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(200):
            if _tgtd_up():
                break
            time.sleep(0.05)
    iqn, image = f"iqn.2026-11.test.vrt:{prefix}", SCRATCH / f"{prefix}-lun.img"
    with open(image, "wb") as out:
        out.truncate(mib * 1024 * 1024)
    tids = [int(t) for t in re.findall(r"^Target (\d+):", _tgtadm("--op", "show", "--mode", "target").stdout, re.M)]
    tid = str(max(tids, default=0) + 1)
    try:
        _tgtadm("--op", "new", "--mode", "target", "--tid", tid, "-T", iqn)
        _tgtadm("--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", "1", "-b", str(image))
        _tgtadm("--op", "bind", "--mode", "target", "--tid", tid, "-I", "ALL")
        if chap:
            _tgtadm("--op", "new", "--mode", "account", "--user", chap[0], "--password", chap[1])
            _tgtadm("--op", "bind", "--mode", "account", "--tid", tid, "--user", chap[0])
        yield iqn
    finally:
        if chap:
            _tgtadm("--op", "unbind", "--mode", "account", "--tid", tid, "--user", chap[0], check=False)
            _tgtadm("--op", "delete", "--mode", "account", "--user", chap[0], check=False)
        _tgtadm("--op", "delete", "--mode", "target", "--tid", tid, "--force", check=False)
        image.unlink(missing_ok=True)
        if started is not None and not re.search(r"^Target ", _tgtadm("--op", "show", "--mode", "target",
                                                                        check=False).stdout, re.M):
            _tgtadm("--op", "delete", "--mode", "system", check=False)
            started.wait(timeout=10)


def initiators(iqn: str) -> list[str]:
    """The initiators logged in to target `iqn` now (tgt's I_T nexus list)."""
    shown = _tgtadm("--op", "show", "--mode", "target", check=False).stdout
    block = re.search(rf"^Target \d+: {re.escape(iqn)}$(.*?)(?=^Target \d+:|\Z)", shown, re.M | re.S)
    return re.findall(r"Initiator: (\S+)", block.group(1)) if block else []
