"""Integration fixtures: the real local libvirtd, uniquely prefixed objects, full clean-up."""
from __future__ import annotations

import ipaddress
import json
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import IMAGES, remove_prefixed  # noqa: F401  (tests import IMAGES from here)

URI = "qemu:///system"


def _conn(readonly: bool = False):
    import libvirt
    libvirt.registerErrorHandler(lambda *_: None, None)
    return libvirt.openReadOnly(URI) if readonly else libvirt.open(URI)


@pytest.fixture(scope="session")
def libvirtd():
    """The real daemon; its absence fails the run (CI must never skip these)."""
    try:
        _conn().close()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the real libvirtd at {URI} is unreachable ({exc}); run scripts/setup.sh", pytrace=False)


def _free_subnet(conn) -> ipaddress.IPv4Network:
    used = []
    for net in conn.listAllNetworks(0):
        for addr in _xml_ips(net.XMLDesc(0)):
            used.append(addr)
    while True:
        candidate = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate


def _xml_ips(xml: str):
    from lxml import etree
    root = etree.fromstring(xml.encode())
    for ip in root.xpath("ip[@address]"):
        prefix = ip.get("prefix") or ip.get("netmask") or "24"
        yield ipaddress.IPv4Interface(f"{ip.get('address')}/{prefix}").network


@dataclass
class Env:
    """One test's world: a prefix, a manifest directory, and helpers to run the CLI."""

    prefix: str
    subnet: ipaddress.IPv4Network
    dir: Path
    conn: object

    def lookup(self, suffix: str):
        conn = _conn(readonly=True)
        return conn.lookupByName(self.name(suffix))

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def ip(self, n: int) -> str:
        return str(self.subnet.network_address + n)

    def write(self, text: str, file: str = "m.yaml") -> Path:
        path = self.dir / file
        path.write_text(text.replace("P-", f"{self.prefix}-").replace("SUBNET.", f"{self.ip(0)[:-1]}"))
        return path

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                              input=input, timeout=600)

    def plan(self, *extra: str) -> tuple[int, dict]:
        done = self.run("plan", str(self.dir), "--json", *extra)
        assert done.returncode in (0, 2), done.stderr
        return done.returncode, json.loads(done.stdout)

    def apply(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run("apply", str(self.dir), "--auto-approve", *extra)

    def readopt(self, path: Path, suffix: str) -> str:
        """Forget guest `suffix`, drop its manifest `path` (its Host kept), adopt it again: the
        text adopt writes."""
        name = self.name(suffix)
        assert self.run("forget", f"Guest/{name}", str(self.dir)).returncode == 0
        host = path.read_text().split("---")[0]
        path.unlink()
        (self.dir / "host.yaml").write_text(host)
        done = self.run("adopt", f"Guest/{name}", str(self.dir))
        assert done.returncode == 0, done.stderr
        return next(self.dir.glob("guest-*.yaml")).read_text()

    def readopt_as(self, kind: str, name: str, host: str) -> str:
        """Forget `kind/name`, leave only the Host document `host` in the manifests, adopt it
        again: the text adopt writes."""
        assert self.run("forget", f"{kind}/{name}", str(self.dir)).returncode == 0
        self.write(host)
        done = self.run("adopt", f"{kind}/{name}", str(self.dir))
        assert done.returncode == 0, done.stdout + done.stderr
        return next(self.dir.glob(f"{kind.lower()}-*.yaml")).read_text()

    def recording(self) -> tuple[Callable, list[str]]:
        """A `run` that keeps every output (stdout and stderr) in the list it returns with it."""
        outputs: list[str] = []

        def run(*args: str) -> subprocess.CompletedProcess:
            done = self.run(*args)
            outputs.append(done.stdout + done.stderr)
            return done
        return run, outputs

    def converge(self, *extra: str) -> None:
        done = self.apply(*extra)
        assert done.returncode == 0, done.stdout + done.stderr
        code, doc = self.plan()
        assert code == 0, json.dumps(doc, indent=1)


@pytest.fixture
def env(libvirtd, tmp_path):
    prefix = f"vrt{uuid.uuid4().hex[:6]}"
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    conn = _conn()
    yield Env(prefix, _free_subnet(conn), manifests, conn)
    conn = _conn()              # a fresh connection: a test may have restarted the daemon
    try:
        cleanup(conn, prefix)
    finally:
        conn.close()


def cleanup(conn, prefix: str) -> None:
    """Remove every object named with the test's prefix (and nothing else)."""
    remove_prefixed(conn, prefix)


def restart_libvirtd() -> None:
    """Stop and start the daemon (no systemd here), waiting until it answers again."""
    subprocess.run(["pkill", "-x", "libvirtd"], check=False)
    for _ in range(100):
        if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode != 0:
            break
        time.sleep(0.1)
    subprocess.run(["libvirtd", "-d"], check=True)
    for _ in range(100):
        if subprocess.run(["virsh", "-q", "-c", URI, "version"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("libvirtd did not come back")


@pytest.fixture
def private_daemon(libvirtd, tmp_path):
    """A libvirtd of the test's own (see tests.helpers.PrivateDaemon), stopped afterwards."""
    from tests.helpers import PrivateDaemon
    daemon = PrivateDaemon(Path(f"/tmp/vrt-daemon-{uuid.uuid4().hex[:8]}"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project built as a wheel, as users install it."""
    from tests.helpers import REPO
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                           "-q", "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (found,) = out.glob("virt_reconcile-*.whl")
    return found


@pytest.fixture
def sshd(tmp_path):
    """An OpenSSH server of the test's own on 127.0.0.1 (a free port, its own host key and
    authorized key), stopped afterwards; yields (port, the client's key file)."""
    import socket
    base = tmp_path / "sshd"
    base.mkdir(mode=0o700)
    Path("/run/sshd").mkdir(exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client")], check=True)
    (base / "authorized_keys").write_text((base / "client.pub").read_text())
    (base / "authorized_keys").chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ssh_dir = Path.home() / ".ssh"
    had = {p.name: p.read_bytes() for p in ssh_dir.glob("known_hosts*")} if ssh_dir.exists() else None
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null", "-p", str(port),
                             "-o", "ListenAddress=127.0.0.1", "-o", f"HostKey={base / 'host'}",
                             "-o", f"AuthorizedKeysFile={base / 'authorized_keys'}", "-o", "PermitRootLogin=prohibit-password",
                             "-o", "PasswordAuthentication=no", "-o", f"PidFile={base / 'pid'}", "-o", "UsePAM=no",
                             "-o", "StrictModes=no"],     # its files are below /tmp
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as conn:
                if conn.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, base / "client"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        # libvirt's no_verify still records the host key in root's known_hosts: put them back
        if had is None:
            shutil.rmtree(ssh_dir, ignore_errors=True)
        else:
            for path in ssh_dir.glob("known_hosts*"):
                path.unlink()
            for name, data in had.items():
                (ssh_dir / name).write_bytes(data)
