"""Per-host locks that hold across machines, kept on the host through libvirt itself.

A lock is a libvirt secret (no value) whose usage is virt-reconcile-lock/INSTANCE and whose UUID
is the lock id. Defining a secret whose usage another secret holds fails, atomically, inside
libvirtd, so only one writer gets it, whichever machine it runs on; it survives a daemon restart
and is not listed as a guest. Its description records who, what and when."""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from . import __version__, fields
from .errors import AdapterError, ReconcilerError
from .ownership import LOCK_USAGE
from .render import render

STALE_AFTER = 3600     # seconds; an older lock is reported as stale (and broken only by `unlock`)


class LockError(ReconcilerError):
    """A host lock could not be taken in time, or an unlock named the wrong lock."""


@dataclass
class Lock:
    instance: str
    operation: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    who: str = field(default_factory=lambda: f"{getpass.getuser()}@{socket.gethostname()}")
    pid: int = field(default_factory=os.getpid)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tool_version: str = __version__
    commit: str = ""

    def age(self) -> float:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(self.created)).total_seconds()

    def stale_because(self) -> str | None:
        """Why the lock looks abandoned (its process is gone, or it is old), else None."""
        user_host = self.who.rsplit("@", 1)
        if len(user_host) == 2 and user_host[1] == socket.gethostname() and not _alive(self.pid):
            return f"its process {self.pid} on this machine is gone"
        if self.age() > STALE_AFTER:
            return "it is older than an hour"
        return None

    def describe(self) -> str:
        why = self.stale_because()
        stale = f" (STALE: {why}; break it with 'virt-reconcile unlock {self.id} PATH')" if why else ""
        return (f"lock {self.id} held by {self.who} (pid {self.pid}) for {self.operation} since "
                f"{self.created}{stale}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_name(instance: str) -> str:
    """The usage of the instance's lock secret."""
    return LOCK_USAGE + instance


def lock_xml(lock: Lock) -> str:
    return render("record.xml.j2", uuid=lock.id, usage=lock_name(lock.instance),
                  description=json.dumps(asdict(lock), sort_keys=True))


def parse(description: str) -> Lock | None:
    try:
        return Lock(**json.loads(description))
    except (ValueError, TypeError):
        return None


def acquire(host, lock: Lock, timeout: float, poll: float = 1.0, say=lambda msg: None) -> None:
    """Take the lock on `host` (an adapter.Host), waiting up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    told = None
    while True:
        holder = try_lock(host, lock)
        if holder is None:
            return
        current = parse(holder)
        text = current.describe() if current else "an unreadable lock"
        if text != told:
            say(f"host {host.name!r}: waiting for {text}")
            told = text
        if time.monotonic() >= deadline:
            raise LockError(f"host {host.name!r} is locked: {text}; gave up after {timeout:.0f} s")
        time.sleep(poll)


def try_lock(host, lock: Lock) -> str | None:
    """Define the lock secret; None when we got it, else the holder's description. A refusal
    with no lock held afterwards is tried once more (the holder released it between the two
    calls); refused again, it is a real error."""
    name = lock_name(lock.instance)
    for attempt in range(2):
        try:
            host.define_secret("Secret", name, lock_xml(lock))
            return None
        except AdapterError as exc:
            holder = read_lock(host, name)
            if holder is not None:
                return holder
            if attempt:                   # not refused for a lock that is held: a real error
                raise exc from None


def _holder(host, name: str):
    """The held lock secret's XML root, or None when no lock is held."""
    try:
        return fields.parse(host.secret_xml("Secret", name))
    except AdapterError as exc:
        if exc.reason == "gone":
            return None
        raise


def read_lock(host, name: str) -> str | None:
    """The description of the held lock `name`, or None when there is none."""
    root = _holder(host, name)
    return None if root is None else (root.findtext("description") or "")


def unlock(host, name: str, lock_id: str) -> bool:
    """Remove the lock `name` if it is the lock `lock_id`; False when it is another or none."""
    root = _holder(host, name)
    if root is None or (root.findtext("uuid") or "").strip() != lock_id:
        return False
    host.undefine_secret("Secret", name)
    return True


def release(host, lock: Lock) -> None:
    unlock(host, lock_name(lock.instance), lock.id)
