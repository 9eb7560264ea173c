"""The command's own surface: --version, -h on every command, readable help, shell completion."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reconciler import __version__

COMMANDS = ["validate", "plan", "apply", "drift", "watch", "status", "adopt", "forget", "unlock", "schema"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_version():
    for flag in ("--version", "-V"):
        done = run(flag)
        assert done.returncode == 0 and done.stdout.strip() == f"virt-reconcile {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_and_readable(command):
    done = run(command, "-h")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: virt-reconcile {command} [OPTIONS]")
    for label in ("<bool>", "<list[", "<str>", "<int>", "<float>", "<path>", "{PATH"):
        assert label not in done.stdout, (command, label, done.stdout)


def test_top_level_help_lists_every_command_and_completion():
    done = run("-h")
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in done.stdout
    assert "--install-completion" in done.stdout


def test_bash_completion_completes_commands():
    done = run(env={"_VIRT_RECONCILE_COMPLETE": "complete_bash", "COMP_WORDS": "virt-reconcile pl",
                    "COMP_CWORD": "1"})
    assert done.stdout.split() == ["plan"]
