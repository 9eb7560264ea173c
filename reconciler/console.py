"""How output reaches a person or a CI log: whether to colour, and apply's progress (a line per
action start and end, flushed at once; a progress bar on a terminal; JSON lines with --json)."""
from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from .plan import FORMAT_VERSION, Action

# Any of these in the environment turns colour off (NO_COLOR, https://no-color.org) or forces it
# on a pipe (FORCE_COLOR, as CI systems set it); --no-color sets NO_COLOR for the whole run.


def colour(stream: TextIO) -> bool:
    """Colour `stream`? --no-color or NO_COLOR: never; FORCE_COLOR (not 0): always; TERM=dumb:
    never; otherwise when it is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force and force != "0":
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def json_line(doc: dict, stream: TextIO = sys.stdout) -> None:
    """One JSON document on one line, flushed (apply --json streams these)."""
    stream.write(json.dumps({"format_version": FORMAT_VERSION, **doc}, default=str) + "\n")
    stream.flush()


class Progress:
    """Apply's progress as lines: one when an action starts, one when it ends with its duration,
    and notes (waiting for a shutdown); each flushed at once, so a CI log fills as it goes."""

    def __init__(self, total: int, stream: TextIO = sys.stdout):
        self.total, self.stream, self.done = total, stream, 0

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, action: Action) -> None:
        self._say(f"  {action.address}: {action.action} started")

    def note(self, action: Action, text: str) -> None:
        self._say(f"  {action.address}: {text}")

    def end(self, action: Action, result, seconds: float) -> None:
        from .report import result_text
        self.done += 1
        result_text(action, result, self.stream, f" ({seconds:.1f} s, {self.done}/{self.total})")
        self.stream.flush()

    def close(self) -> None:
        pass


class BarProgress(Progress):
    """On a terminal: the same lines above a progress bar with the total (rich)."""

    def __init__(self, total: int, stream: TextIO = sys.stdout):
        super().__init__(total, stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
        self.bar = Bar(TextColumn("Applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(file=stream, no_color=not colour(stream)), transient=True)
        self.task = self.bar.add_task("apply", total=total)
        self.bar.start()

    def _say(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False)

    def end(self, action: Action, result, seconds: float) -> None:
        from .report import result_lines
        self.done += 1
        for line in result_lines(action, result, colour=False, suffix=f" ({seconds:.1f} s)"):
            self._say(line)
        self.bar.advance(self.task)

    def close(self) -> None:
        self.bar.stop()


class JsonProgress(Progress):
    """apply --json: a JSON line per event on stdout."""

    def start(self, action: Action) -> None:
        json_line({"type": "start", "address": action.address, "action": action.action}, self.stream)

    def note(self, action: Action, text: str) -> None:
        json_line({"type": "note", "address": action.address, "message": text}, self.stream)

    def end(self, action: Action, result, seconds: float) -> None:
        json_line({"type": "end", "address": action.address, "action": action.action, "status": result.status,
                   "message": result.message, "notes": result.notes, "seconds": round(seconds, 3)}, self.stream)


def progress_for(total: int, as_json: bool, stream: TextIO = sys.stdout) -> Progress:
    if as_json:
        return JsonProgress(total, stream)
    if stream.isatty() and os.environ.get("TERM") != "dumb":
        return BarProgress(total, stream)
    return Progress(total, stream)
