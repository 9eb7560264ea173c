"""apply runs independent actions of a host at once (--parallelism) and hosts at the same time,
never starting an action before what it depends on has ended."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.libvirtd


def _manifest(guests: int, host: str = "local", instance: str = "P-i", tag: str = "") -> str:
    docs = [f'kind: Host\nmetadata: {{name: {host}, labels: {{shard: "{tag or 0}"}}}}\n'
            f'spec: {{uri: "qemu:///system", instance: {instance}}}',
            f"kind: Network\nmetadata: {{name: P-net{tag}}}\nspec: {{forward: isolated, bridge: P-br{tag}, "
            "autostart: false}",
            f"kind: StoragePool\nmetadata: {{name: P-pool{tag}}}\n"
            f"spec: {{path: /var/lib/libvirt/images/P-pool{tag}, autostart: false}}",
            f"kind: Volume\nmetadata: {{name: base.qcow2}}\nspec: {{pool: P-pool{tag}, capacity: 16MiB}}",
            f"kind: Volume\nmetadata: {{name: copy.qcow2}}\n"
            f"spec: {{pool: P-pool{tag}, capacity: 16MiB, clone: P-pool{tag}/base.qcow2}}"]
    for n in range(guests):
        docs.append(f"kind: Volume\nmetadata: {{name: g{n}.qcow2}}\nspec: {{pool: P-pool{tag}, capacity: 16MiB}}")
        docs.append(f"kind: Guest\nmetadata: {{name: P-g{n}{tag}}}\nspec:\n  state: shutoff\n  vcpus: 1\n"
                    f"  memory: 64MiB\n  disks: [{{volume: P-pool{tag}/g{n}.qcow2}}]\n"
                    f"  interfaces: [{{network: P-net{tag}}}]")
    return "\n---\n".join(docs[:1] + [d.replace("metadata: {name:", f"metadata: {{host: {host}, name:")
                                      for d in docs[1:]]) + "\n"


def _events(stdout: str) -> tuple[dict, list[dict]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    return next(doc for doc in lines if doc["type"] == "plan"), [d for d in lines if d["type"] in ("start", "end")]


def _most_at_once(events: list[dict]) -> int:
    now = most = 0
    for event in events:
        now += 1 if event["type"] == "start" else -1
        most = max(most, now)
    return most


def test_independent_actions_run_at_once_and_dependencies_first(env):
    env.write(_manifest(8))
    done = env.apply("--json", "--parallelism", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    plan, events = _events(done.stdout)
    position = {(e["type"], e["address"]): n for n, e in enumerate(events)}
    assert all(e["status"] == "done" for e in events if e["type"] == "end")
    for action in plan["changes"]:
        for dep in action["deps"]:          # the clone after its source, guests after disks and network
            assert position[("end", dep)] < position[("start", action["address"])], (dep, action["address"])
    assert 2 <= _most_at_once(events) <= 4          # actions overlapped, never more than asked
    volumes = [e for e in events if "/Volume/" in e["address"]]
    guests = [e for e in events if "/Guest/" in e["address"]]
    assert max(events.index(e) for e in volumes) < min(events.index(e) for e in guests)   # kinds in turn
    code, doc = env.plan()
    assert code == 0, json.dumps(doc, indent=1)

    env.write(_manifest(8).replace("memory: 64MiB", "memory: 96MiB"))      # eight updates, one at a time
    done = env.apply("--json", "--parallelism", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    _, events = _events(done.stdout)
    assert len(events) == 16 and _most_at_once(events) == 1
    assert env.plan()[0] == 0


def test_hosts_are_applied_at_the_same_time(env):
    """Two Hosts (one daemon, two instances) in one run: both converge; each host's actions are
    named by its host."""
    env.write(_manifest(2, "one", "P-one", "a") + "---\n" + _manifest(2, "two", "P-two", "b"))
    done = env.apply("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    _, events = _events(done.stdout)
    ends = [e for e in events if e["type"] == "end"]
    assert {e["address"].split("/")[0] for e in ends} == {"one", "two"} and len(ends) == 2 * 8
    running, both = set(), False        # at some moment an action of each host was under way
    for event in events:
        (running.add if event["type"] == "start" else running.discard)(event["address"])
        both = both or {a.split("/")[0] for a in running} == {"one", "two"}
    assert both
    code, doc = env.plan()
    assert code == 0, json.dumps(doc, indent=1)

    # pull mode: each host applies its own slice, picked by its labels
    env.write((_manifest(2, "one", "P-one", "a") + "---\n" + _manifest(2, "two", "P-two", "b"))
              .replace("memory: 64MiB", "memory: 80MiB"))
    done = env.apply("--selector", "shard=a")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "one/Guest/" in done.stdout and "two/" not in done.stdout
    code, doc = env.plan()
    assert code == 2 and {a["host"] for a in doc["changes"]} == {"two"}, json.dumps(doc, indent=1)
    assert env.run("plan", str(env.dir), "--selector", "shard=a").returncode == 0
    missing = env.run("plan", str(env.dir), "--selector", "shard=c")
    assert missing.returncode == 1 and "--selector 'shard=c' matches no Host" in missing.stderr
