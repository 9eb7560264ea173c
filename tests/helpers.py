"""Test helpers shared by unit and integration tests."""
from __future__ import annotations

import textwrap
from pathlib import Path

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
