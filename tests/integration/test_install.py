"""The package as users install it: a wheel in a fresh venv (not the checkout, not editable) plans
and applies on the real daemon; without libvirt-python it says what to install in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def _run(*cmd, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _venv(path: Path, system_site: bool) -> Path:
    done = _run("/usr/bin/python3", "-m", "venv",
                *(["--system-site-packages"] if system_site else []), path)
    assert done.returncode == 0, done.stderr
    return path / "bin"


def test_wheel_in_a_fresh_venv_plans_and_applies(wheel, env, tmp_path):
    """Templates are package data: the installed command renders, applies and converges from a
    directory that is not the checkout (Debian's python3-libvirt through --system-site-packages)."""
    bin_dir = _venv(tmp_path / "venv", system_site=True)
    done = _run(bin_dir / "pip", "install", "-q", "--disable-pip-version-check", wheel)
    assert done.returncode == 0, done.stderr
    env.write(BASE.replace("state: running", "state: shutoff"))
    tool = bin_dir / "virt-reconcile"
    assert _run(tool, "--version").stdout.strip().startswith("virt-reconcile ")
    done = _run(tool, "apply", env.dir, "--auto-approve", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run(tool, "plan", env.dir, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    origin = _run(bin_dir / "python", "-c", "import reconciler.render as r; print(r.TEMPLATES)", cwd=tmp_path)
    assert str(tmp_path / "venv") in origin.stdout, origin.stdout      # not the checkout's templates/


def test_without_libvirt_python_one_clear_line(wheel, env, tmp_path):
    bin_dir = _venv(tmp_path / "plain", system_site=False)
    deps = [line.split(";")[0].strip() for line in _requires(wheel) if not line.startswith("libvirt-python")]
    done = _run(bin_dir / "pip", "install", "-q", "--disable-pip-version-check", *deps)
    assert done.returncode == 0, done.stderr
    done = _run(bin_dir / "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", wheel)
    assert done.returncode == 0, done.stderr
    env.write(BASE)
    done = _run(bin_dir / "virt-reconcile", "plan", env.dir, cwd=tmp_path)
    assert done.returncode == 1
    assert "libvirt-python is not installed" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if "libvirt-python" in line]) == 1, done.stderr


def _requires(wheel: Path) -> list[str]:
    import zipfile
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        text = whl.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
