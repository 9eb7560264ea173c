"""Bound the time a host may take: a call that does not return in time fails with HostError.

libvirt calls block in C and cannot be interrupted, so the call runs in a daemon thread and the
caller stops waiting for it; a thread left behind ends with the process. Connections also have
libvirt keepalive (adapter), which closes them when a daemon stops answering altogether."""
from __future__ import annotations

import threading
from typing import Any, Callable

from .errors import HostError

DEFAULT_TIMEOUT = 120.0     # seconds a host may take to connect, and to be read (Host spec.timeout)
CLOSE_TIMEOUT = 5.0         # closing a connection is an RPC too: never wait long for it


def within(seconds: float, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or HostError naming `what` when it has not returned after `seconds`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:   # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"virt-reconcile {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HostError(f"{what}: no answer within {seconds:g} s (the daemon may be frozen or "
                        "overloaded; the Host's 'timeout' sets this limit)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
