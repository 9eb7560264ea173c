"""CLI contract on the real daemon: read-only plan, exit codes, JSON on stdout, approval prompt."""
from __future__ import annotations

import json

import pytest

from reconciler.adapter import Host
from reconciler.errors import AdapterError
from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def names(conn, prefix):
    return ([d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
            + [n.name() for n in conn.listAllNetworks(0) if n.name().startswith(prefix)]
            + [p.name() for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)])


def test_plan_changes_nothing_and_its_connection_cannot_write(env):
    env.write(BASE)
    code, _ = env.plan()
    assert code == 2 and names(env.conn, env.prefix) == []
    host = Host("local", "qemu:///system", readonly=True)
    with pytest.raises(AdapterError) as exc:
        host.define("Network", env.name("x"), f"<network><name>{env.name('x')}</name></network>")
    assert "read only" in str(exc.value) or "read-only" in str(exc.value)
    assert names(env.conn, env.prefix) == []


def test_json_plan_is_alone_on_stdout(env):
    env.write(BASE)
    done = env.run("plan", str(env.dir), "--json")
    assert done.returncode == 2
    doc = json.loads(done.stdout)      # nothing but the document
    assert doc["format_version"] == "1.0" and doc["summary"]["actions"]["create"] == 5
    first = doc["changes"][0]
    assert {"host", "kind", "name", "action", "impact", "reason", "changes"} <= set(first)


def test_saved_plan_is_applied_without_asking(env):
    env.write(BASE)
    out = env.dir.parent / "plan.json"
    done = env.run("plan", str(env.dir), "--out", str(out))
    assert done.returncode == 2 and out.exists()
    done = env.run("apply", "--plan", str(out), input="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert env.plan()[0] == 0


def test_apply_asks_and_anything_but_yes_cancels(env):
    env.write(BASE)
    done = env.run("apply", str(env.dir), input="y\n")
    assert done.returncode == 1 and "cancelled" in done.stdout
    assert names(env.conn, env.prefix) == []


def test_unreachable_host_names_host_and_uri(env):
    env.write(BASE.replace('uri: "qemu:///system"', 'uri: "qemu+unix:///system?socket=/nonexistent/sock"'))
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1
    assert "host 'local'" in done.stderr and "/nonexistent/sock" in done.stderr
