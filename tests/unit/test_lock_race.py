"""A lock released between a refused define and the look at its holder (locking.try_lock)."""
from __future__ import annotations

import pytest

from reconciler import locking
from reconciler.errors import AdapterError


class Host:
    """Answers define_secret from a script of outcomes; secret_xml finds no lock (released)."""

    name = "h"

    def __init__(self, refusals: int):
        self.refusals, self.defined = refusals, 0

    def define_secret(self, kind, usage, xml):
        if self.refusals:
            self.refusals -= 1
            raise AdapterError("define", f"Secret/{usage}", "already defined for use with " + usage)
        self.defined += 1

    def secret_xml(self, kind, usage):
        raise AdapterError("read", f"Secret/{usage}", "no secret", reason="gone")


def test_a_lock_released_meanwhile_is_taken_on_the_second_try():
    host = Host(refusals=1)
    assert locking.try_lock(host, locking.Lock("i", "apply")) is None and host.defined == 1


def test_refused_twice_with_no_lock_held_is_a_real_error():
    with pytest.raises(AdapterError, match="already defined"):
        locking.try_lock(Host(refusals=2), locking.Lock("i", "apply"))
