"""What people and CI logs see, on the real daemon: progress lines that arrive while apply runs
(stdout a pipe), a shutdown wait that says so, colour rules, a closed stdin, JSON everywhere with
format_version, saved plans shown, and plan agreeing with drift about objects left in place."""
from __future__ import annotations

import json
import os
import subprocess
import sys


import pytest

from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd


def _popen(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})


def test_progress_lines_arrive_while_apply_runs_and_the_shutdown_wait_is_said(env):
    path = env.write(BASE)
    env.converge()
    path.write_text(path.read_text().replace("max: 256MiB", "max: 384MiB"))
    proc = _popen("apply", str(env.dir), "--auto-approve", "--restart", "--force-stop", "--shutdown-timeout", "4")
    seen, waiting_seen_while_running = [], False
    for line in proc.stdout:                      # a pipe, not a terminal: lines must still come at once
        seen.append(line.rstrip())
        if "asking the guest to shut down; waiting up to 4 s (then powered off)" in line:
            waiting_seen_while_running = proc.poll() is None
    proc.wait(timeout=120)
    assert proc.returncode == 0, "\n".join(seen) + proc.stderr.read()
    assert waiting_seen_while_running, seen
    vm = f"local/Guest/{env.name('vm')}"
    starts = [i for i, line in enumerate(seen) if line.strip().startswith(f"{vm}: ") and line.endswith("started")]
    ends = [i for i, line in enumerate(seen) if line.strip().startswith(f"{vm}: ") and " done (" in line]
    assert starts and ends and starts[0] < ends[0], seen
    assert any(line.endswith("s, 1/1)") for line in seen), seen        # its duration and the total


def test_colour_follows_no_color_force_color_and_term(env):
    env.write(BASE)
    plain = env.run("plan", str(env.dir))
    assert "\033[" not in plain.stdout                                   # a pipe: no colour
    forced = subprocess.run([sys.executable, "-m", "reconciler", "plan", str(env.dir)], capture_output=True,
                            text=True, env={**os.environ, "FORCE_COLOR": "1"})
    assert "\033[32m+\033[0m" in forced.stdout
    for extra_env, args in (({"FORCE_COLOR": "1", "NO_COLOR": "1"}, []), ({"FORCE_COLOR": "1"}, ["--no-color"])):
        done = subprocess.run([sys.executable, "-m", "reconciler", *args, "plan", str(env.dir)],
                              capture_output=True, text=True, env={**os.environ, **extra_env})
        assert done.returncode == 2 and "\033[" not in done.stdout, (extra_env, args)
    assert env.run("--no-color", "plan", str(env.dir)).returncode == 2


def test_closed_stdin_says_to_use_auto_approve_and_changes_nothing(env):
    env.write(BASE)
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", str(env.dir)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 1
    assert "stdin is closed" in done.stderr and "--auto-approve" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    code, _ = env.plan()
    assert code == 2                                                    # nothing was created


def test_json_everywhere_has_format_version(env, tmp_path):
    env.write(BASE.replace("state: running", "state: shutoff"))
    done = env.run("validate", str(env.dir), "--json")
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and doc["format_version"] == "1.0" and doc["valid"] and doc["objects"] == 5
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "m.yaml").write_text("kind: Guest\nmetadata: {name: x}\nspec: {vcpus: 0, memory: 1MiB}\n")
    done = env.run("validate", str(bad), "--json")
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and not doc["valid"]
    assert {"file", "line", "field", "message"} <= set(doc["problems"][0]) and doc["problems"][0]["line"] == 3

    done = env.run("apply", str(env.dir), "--auto-approve", "--json")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    assert all(line["format_version"] == "1.0" for line in lines)
    types = [line["type"] for line in lines]
    assert types[0] == "plan" and types[-1] == "summary" and types.count("start") == types.count("end") == 5
    assert lines[-1]["done"] == 5 and all("seconds" in line for line in lines if line["type"] == "end")
    assert env.run("apply", str(env.dir), "--json").returncode == 1     # cannot ask for approval

    for command in ("status", "drift"):
        done = env.run(command, str(env.dir), "--json")
        doc = json.loads(done.stdout)
        assert done.returncode == 0 and doc["format_version"] == "1.0", (command, done.stdout, done.stderr)
    assert json.loads(env.run("status", str(env.dir), "--json").stdout)["errors"] == {}


def test_show_prints_a_saved_plan_in_each_format(env, tmp_path):
    env.write(BASE)
    saved = tmp_path / "plan.json"
    assert env.run("plan", str(env.dir), "--out", str(saved)).returncode == 2
    text = env.run("show", str(saved))
    assert text.returncode == 0 and f"+ local/Guest/{env.name('vm')}" in text.stdout
    assert f"virt-reconcile apply --plan {saved}" in text.stdout
    doc = json.loads(env.run("show", str(saved), "--format", "json").stdout)
    assert doc["format_version"] == "1.0" and doc["summary"]["actions"]["create"] == 5
    markdown = env.run("show", str(saved), "--format", "markdown").stdout
    assert markdown.startswith("### virt-reconcile plan") and "```diff" in markdown
    missing = env.run("show", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read plan" in missing.stderr


def test_plan_lists_what_drift_reports_as_left_in_place(env):
    path = env.write(BASE.replace("state: running", "state: shutoff"))
    env.converge()
    text = path.read_text()
    network_doc = next(d for d in text.split("---\n") if "kind: Network" in d)
    path.write_text(text.replace(network_doc, "").replace("  interfaces: [{network: P-net}]\n".replace(
        "P-", f"{env.prefix}-"), ""))
    done = env.run("plan", str(env.dir))
    net = f"local/Network/{env.name('net')}"
    assert f"= {net}  # owned, no longer in the manifests; kept (apply --prune deletes it)" in done.stdout, done.stdout
    assert "The hosts match the manifests" not in done.stdout
    code, doc = env.plan()
    assert [k["address"] for k in doc["kept"]] == [net]
    drift = json.loads(env.run("drift", str(env.dir), "--json").stdout)
    assert any(f["address"] == net and f["class"] == "pending" for f in drift["findings"])


def test_a_new_object_shows_no_empty_collections_or_implied_defaults(env):
    env.write(BASE.replace("  graphics: {type: vnc, listen: 127.0.0.1}\n", "  graphics: {type: vnc}\n"))
    code, doc = env.plan()
    guest = next(c for c in doc["changes"] if c["kind"] == "Guest")
    paths = {c["path"]: c["after"] for c in guest["changes"]}
    assert "graphics.port" not in paths and not any(v in ({}, []) for v in paths.values()), paths
    assert paths["graphics.listen"] == "127.0.0.1"
    text = env.run("plan", str(env.dir)).stdout
    assert "= {}" not in text and "= -1" not in text

