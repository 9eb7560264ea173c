"""Test helpers shared by unit and integration tests."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write a manifest file (dedented) and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def recorded(name: str) -> str:
    """XML recorded from the real libvirtd (qemu:///system, libvirt 9.0, QEMU 7.2)."""
    return (DATA / "recorded" / name).read_text(encoding="utf-8")


IMAGES = Path("/var/lib/libvirt/images")


def remove_prefixed(conn, prefix: str) -> None:
    """Remove every libvirt object named with `prefix` (guests also when the prefix is inside the
    name: legacy inventory and lock domains; secrets whose usage holds it: an instance's records and
    lock), their pool directories and image files."""
    import libvirt
    for dom in conn.listAllDomains(0):
        if prefix in dom.name():
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    for net in conn.listAllNetworks(0):
        if net.name().startswith(prefix):
            if net.isActive():
                net.destroy()
            net.undefine()
    for pool in conn.listAllStoragePools(0):
        if pool.name().startswith(prefix):
            if pool.isActive():
                for vol in pool.listAllVolumes(0):
                    try:
                        vol.delete(0)
                    except libvirt.libvirtError:
                        pass        # an iSCSI pool's LUNs cannot be deleted
                pool.destroy()
            found = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path")
            path = Path(found or "/nonexistent")
            pool.undefine()
            if path.name.startswith(prefix):
                shutil.rmtree(path, ignore_errors=True)
    for secret in conn.listAllSecrets(0):          # ownership records and locks of the test's instance
        try:
            if prefix in (secret.usageID() or ""):
                secret.undefine()
        except libvirt.libvirtError:
            pass
    import subprocess
    for line in subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                               text=True).stdout.splitlines():
        name = line.split(": ")[1].split("@")[0]
        if name.startswith(prefix):          # the test's host bridges (Bridge kind)
            subprocess.run(["ip", "link", "del", name], check=False)
    for conf in ("/etc/network/interfaces.d", "/etc/systemd/network", "/etc/NetworkManager/system-connections",
                 "/etc/sysconfig/network"):
        for leftover in Path(conf).glob(f"*vr-{prefix}*"):
            leftover.unlink()
    for leftover in IMAGES.glob(f"{prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()


class PrivateDaemon:
    """A libvirtd of a test's own, in a mount namespace of its own (its /run/libvirt, /var/lib/libvirt,
    /var/cache/libvirt and /etc/libvirt are empty), answering on a socket in `base`. A test may
    freeze it (SIGSTOP) without disturbing the system daemon."""

    def __init__(self, base: Path):
        import subprocess
        import time
        self.base = base
        (base / "etc").mkdir(parents=True)
        (base / "sock").mkdir()
        (base / "etc" / "libvirtd.conf").write_text(f'unix_sock_dir = "{base}/sock"\nunix_sock_rw_perms = "0700"\n')
        script = ("mount -t tmpfs tmpfs /run/libvirt && mount -t tmpfs tmpfs /var/lib/libvirt && "
                  "mount -t tmpfs tmpfs /var/cache/libvirt && mount --bind \"$1/etc\" /etc/libvirt && "
                  "exec libvirtd -d -f /etc/libvirt/libvirtd.conf -p \"$1/pid\"")
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(base)],
                       check=True, capture_output=True, timeout=60)
        for _ in range(200):
            if (base / "pid").exists() and (base / "sock" / "libvirt-sock").exists():
                break
            time.sleep(0.05)
        self.pid = int((base / "pid").read_text())
        self.uri = f"qemu+unix:///system?socket={base}/sock/libvirt-sock"

    def signal(self, sig) -> None:
        import os
        os.kill(self.pid, sig)

    def stop(self) -> None:
        import os
        import signal
        import time
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)
