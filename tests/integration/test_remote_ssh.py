"""A fleet reached over qemu+ssh://: an OpenSSH server the test starts on 127.0.0.1 stands for a
remote host (its own port, host key and client key); plan, apply and drift go through it, and a
second host that cannot be reached fails only its own part of the run, named by its URI."""
from __future__ import annotations

import socket

import pytest

from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_plan_apply_drift_over_ssh_and_an_unreachable_host_fails_alone(env, sshd):
    port, key = sshd
    remote = f"qemu+ssh://root@127.0.0.1:{port}/system?keyfile={key}&no_verify=1"
    gone = f"qemu+ssh://root@127.0.0.1:{_closed_port()}/system?keyfile={key}&no_verify=1"
    objects = BASE.split("---\n", 1)[1]          # network, pool, volumes and a guest
    text = (f'kind: Host\nmetadata: {{name: far}}\nspec: {{uri: "{remote}", instance: P-i, timeout: 30}}\n---\n'
            + objects.replace("metadata: {name: P-", "metadata: {host: far, name: P-")
            + f'---\nkind: Host\nmetadata: {{name: gone}}\nspec: {{uri: "{gone}", instance: P-i, timeout: 10}}\n'
            + "---\nkind: Network\nmetadata: {name: P-gn, host: gone}\nspec: {forward: isolated}\n")
    env.write(text)

    done = env.run("plan", str(env.dir))
    assert done.returncode == 1 and "far/Guest/" in done.stdout, done.stdout + done.stderr
    assert f"127.0.0.1:{_port(gone)}" in done.stdout + done.stderr           # the host that failed, by URI

    done = env.apply()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "far/Guest/" in done.stdout and " done " in done.stdout, done.stdout
    assert env.lookup("vm").isActive()                # made through ssh on this machine's daemon
    code, doc = env.plan("--host", "far")
    assert code == 0, doc
    done = env.run("drift", str(env.dir), "--host", "far")
    assert done.returncode == 0, done.stdout + done.stderr


def _port(uri: str) -> int:
    return int(uri.split("127.0.0.1:")[1].split("/")[0])
