"""This machine's network links, changed with iproute2 (for hosts that are this machine)."""
from __future__ import annotations

import subprocess
from urllib.parse import urlparse


def is_local(uri: str) -> bool:
    """A libvirt URI whose daemon runs on this machine."""
    return urlparse(uri).hostname in (None, "", "localhost")


def set_master(link: str, bridge: str) -> str | None:
    """Enslave `link` to `bridge`; None when done, else iproute2's complaint."""
    try:
        done = subprocess.run(["ip", "link", "set", "dev", link, "master", bridge],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else done.stderr.strip()
