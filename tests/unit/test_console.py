"""Colour rules and apply's progress lines (console.py)."""
from __future__ import annotations

import io
import json

import pytest

from reconciler import console
from reconciler.apply import Result
from reconciler.plan import Action


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty, self.flushes = tty, 0

    def isatty(self):
        return self.tty

    def flush(self):
        self.flushes += 1


@pytest.mark.parametrize("env, tty, want", [
    ({}, True, True), ({}, False, False),
    ({"NO_COLOR": "1"}, True, False), ({"NO_COLOR": ""}, True, True),
    ({"FORCE_COLOR": "1"}, False, True), ({"FORCE_COLOR": "0"}, False, False),
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
    ({"TERM": "dumb"}, True, False), ({"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
])
def test_colour_rules(monkeypatch, env, tty, want):
    for var in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert console.colour(Stream(tty)) is want


def _action():
    return Action("h", "Guest", "g", "update", "live", "why", [], None, None)


def test_progress_lines_are_flushed_as_they_happen(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    out = Stream(tty=False)
    progress = console.progress_for(2, as_json=False, stream=out)
    progress.start(_action())
    assert out.getvalue() == "  h/Guest/g: update started\n" and out.flushes >= 1
    progress.note(_action(), "waiting")
    progress.end(_action(), Result("h/Guest/g", "done"), 1.234)
    assert out.getvalue().splitlines()[-1] == "  h/Guest/g: update done (1.2 s, 1/2)"
    assert out.flushes >= 3


def test_json_progress_lines():
    out = Stream(tty=True)
    progress = console.progress_for(1, as_json=True, stream=out)
    progress.start(_action())
    progress.end(_action(), Result("h/Guest/g", "failed", "boom"), 0.5)
    start, end = [json.loads(line) for line in out.getvalue().splitlines()]
    assert start == {"format_version": "1.0", "type": "start", "address": "h/Guest/g", "action": "update"}
    assert end["status"] == "failed" and end["message"] == "boom" and end["seconds"] == 0.5
