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
    freeze it (SIGSTOP) without disturbing the system daemon.

    Optional, for guests and migration between two such daemons (or one and the system daemon):
    `host_uuid` (libvirtd.conf; two daemons that migrate need different ones, else "Attempt to migrate
    guest to the same host"), `qemu_conf` (text of its qemu.conf, default none), `virtlogd` (a virtlogd
    of its own in the namespace: without it, or `stdio_handler = "file"` in qemu_conf, no guest starts:
    "Failed to connect socket to '/run/libvirt/virtlogd-sock'"), `own_logs` (BASE/log and BASE/swtpm-log
    bound over /var/log/libvirt and /var/log/swtpm: two daemons' logs of one guest name do not mix),
    `binds` ((source, target) pairs bound after the tmpfs mounts, e.g. a directory of the test's over
    /var/lib/libvirt/images), `libvirtd_conf` (lines added to libvirtd.conf, e.g. log_filters).
    A directory outside the four hidden ones (e.g. /var/tmp/vrtmig-shared) is seen at the same path by
    every daemon: storage shared between them."""

    def __init__(self, base: Path, *, host_uuid: str | None = None, qemu_conf: str | None = None,
                 virtlogd: bool = False, own_logs: bool = False, binds: tuple = (), libvirtd_conf: str = ""):
        import shlex
        import subprocess
        import time
        self.base = base
        (base / "etc").mkdir(parents=True)
        (base / "sock").mkdir()
        conf = f'unix_sock_dir = "{base}/sock"\nunix_sock_rw_perms = "0700"\n'
        if host_uuid:
            conf += f'host_uuid = "{host_uuid}"\n'
        (base / "etc" / "libvirtd.conf").write_text(conf + libvirtd_conf)
        if qemu_conf is not None:
            (base / "etc" / "qemu.conf").write_text(qemu_conf)
        script = ("mount -t tmpfs tmpfs /run/libvirt && mount -t tmpfs tmpfs /var/lib/libvirt && "
                  "mount -t tmpfs tmpfs /var/cache/libvirt && mount --bind \"$1/etc\" /etc/libvirt && ")
        if own_logs:
            (base / "log").mkdir()
            (base / "swtpm-log").mkdir()
            script += ("mount --bind \"$1/log\" /var/log/libvirt && mkdir -p /var/log/swtpm && "
                       "mount --bind \"$1/swtpm-log\" /var/log/swtpm && ")
        for source, target in binds:
            source, target = shlex.quote(str(source)), shlex.quote(str(target))
            script += f"mkdir -p {target} && mount --bind {source} {target} && "
        if virtlogd:
            script += "virtlogd -d -p \"$1/virtlogd.pid\" && "
        script += "exec libvirtd -d -f /etc/libvirt/libvirtd.conf -p \"$1/pid\""
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
        """Stop the daemon, then what it leaves running: guests' QEMU and swtpm (by the pid files in its
        /run/libvirt, read through /proc/PID/root: QEMU runs in a mount namespace of its own) and all
        else in its namespace (virtlogd, dnsmasq). Bridges of its networks stay: destroy them first."""
        import os
        import signal
        import time
        try:
            namespace = os.readlink(f"/proc/{self.pid}/ns/mnt")
        except OSError:
            namespace = None
        if namespace == os.readlink("/proc/self/ns/mnt"):
            namespace = None                # never the system daemon's guests
        leftovers = []
        run = Path(f"/proc/{self.pid}/root/run/libvirt/qemu")
        for pidfile in [*run.glob("*.pid"), *run.glob("swtpm/*.pid")] if namespace else []:
            try:
                pid = int(pidfile.read_text().strip())
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"qemu" in command or b"swtpm" in command:      # not a pid reused since
                    leftovers.append(pid)
            except (OSError, ValueError):
                pass

        def end(pid: int) -> None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    return
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        end(self.pid)
        for pid in leftovers:
            end(pid)
        if namespace:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if os.readlink(entry / "ns" / "mnt") == namespace:
                            end(int(entry.name))
                    except (OSError, ProcessLookupError):
                        pass
        shutil.rmtree(self.base, ignore_errors=True)
