"""Guests and volumes arriving from a host a run does not read: where the manifests put them at an
earlier commit (git), and the host's last applied commit (its records)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler import gitinfo, history, loader
from reconciler.history import Arrival
from reconciler.identity import OWNER_NS
from reconciler.live import HostState, LiveObject
from reconciler.manifest import Manifest, build
from reconciler.ownership import Record

HOSTS = """\
kind: Host
metadata: {name: a}
spec: {uri: "qemu:///system", instance: fleet}
---
kind: Host
metadata: {name: b}
spec: {uri: "qemu+ssh://root@b/system", instance: fleet}
---
kind: StoragePool
metadata: {name: vms, host: a}
spec: {path: /var/lib/libvirt/images}
---
kind: StoragePool
metadata: {name: vms, host: b}
spec: {path: /var/lib/libvirt/images}
"""
GUEST = """\
---
kind: Volume
metadata: {name: db.qcow2, host: WHERE}
spec: {pool: vms, capacity: 1GiB}
---
kind: Guest
metadata: {name: db, host: WHERE}
spec: {vcpus: 1, memory: 64MiB, disks: [{volume: vms/db.qcow2}]}
---
kind: GuestSet
metadata: {name: web, host: WHERE}
spec: {count: 2, name: "web-{{ index }}", template: {vcpus: 1, memory: 64MiB}}
"""


def _repo(tmp_path: Path) -> tuple[Path, callable]:
    repo = tmp_path / "repo"
    (repo / "fleet").mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    run("init", "-q")
    return repo, run


def _commit(repo: Path, run, where: str) -> str:
    (repo / "fleet" / "hosts.yaml").write_text(HOSTS)
    (repo / "fleet" / "guests.yml").write_text(GUEST.replace("WHERE", where))
    (repo / "fleet" / "notes.txt").write_text("not a manifest")
    run("add", ".")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", where)
    return run("rev-parse", "HEAD")


def test_placements_expand_sets_and_name_volumes_by_pool():
    docs = loader.parse_text("m.yaml", HOSTS + GUEST.replace("WHERE", "a"))
    assert history.placements(docs) == {("Volume", "vms/db.qcow2"): {"a"}, ("Guest", "db"): {"a"},
                                        ("Guest", "web-1"): {"a"}, ("Guest", "web-2"): {"a"}}
    one_host = loader.parse_text("m.yaml", HOSTS.split("---")[0] + "---\nkind: Guest\nmetadata: {name: x}\n")
    assert history.placements(one_host) == {("Guest", "x"): {"a"}}
    # lenient: documents that are not valid today (or are not documents) still place what they can
    odd = loader.parse_text("m.yaml", HOSTS + "---\n- a list\n---\nkind: Guest\nmetadata: {name: y, host: b}\n"
                            "spec: {no_such_field: 1}\n---\nkind: Volume\nmetadata: {name: v, host: b}\n")
    assert history.placements(odd) == {("Guest", "y"): {"b"}}


def test_files_at_reads_an_earlier_commit_and_refuses_what_is_not_a_commit(tmp_path):
    repo, run = _repo(tmp_path)
    first = _commit(repo, run, "a")
    _commit(repo, run, "b")
    files = gitinfo.files_at([repo / "fleet"], first, loader.SUFFIXES)
    assert sorted(Path(f).name for f in files) == ["guests.yml", "hosts.yaml"]
    assert b"host: a" in files[str(repo / "fleet" / "guests.yml")]
    assert gitinfo.files_at([repo / "fleet" / "guests.yml"], first, loader.SUFFIXES).keys() == \
        {str(repo / "fleet" / "guests.yml")}
    assert history.placements_at([repo / "fleet"], first)[("Guest", "db")] == {"a"}
    assert gitinfo.files_at([repo], "--output=/tmp/x", loader.SUFFIXES) is None     # never an option
    assert gitinfo.files_at([repo], "0" * 40, loader.SUFFIXES) is None              # not in the repository
    assert gitinfo.files_at([tmp_path / "elsewhere"], first, loader.SUFFIXES) is None


def test_last_commit_is_the_latest_application():
    owned = {("Guest", "x"): Record("fleet", "h", commit="a" * 40, applied="2026-11-01T10:00:00+00:00"),
             ("Volume", "p/v"): Record("fleet", "h", commit="b" * 40, applied="2026-11-02T10:00:00+00:00"),
             ("Network", "n"): Record("fleet", "h", commit="", applied="2026-11-03T10:00:00+00:00")}
    assert history.last_commit(owned) == "b" * 40
    assert history.last_commit({}) is None


def _state(host: str, commit: str, *objects: tuple[str, str]) -> HostState:
    """A host that applied `commit` (its one record: a network carrying the owner marker)."""
    state = HostState(host, "qemu:///system")
    marker = (f'<metadata><vr:owner xmlns:vr="{OWNER_NS}" instance="fleet" hash="h" '
              f'commit="{commit}" applied="2026-11-02T10:00:00+00:00">{{}}</vr:owner></metadata>')
    state.objects[("Network", "n")] = LiveObject("Network", "n", f"<network><name>n</name>{marker}</network>", True)
    for kind, name in objects:
        state.objects[(kind, name)] = LiveObject(kind, name, f"<domain><name>{name}</name></domain>")
    return state


@pytest.fixture
def moved(tmp_path) -> tuple[list[Path], Manifest, str]:
    """A repository whose guests were on host a at its first commit and are on b at its second:
    (the manifest paths, the manifests now, the first commit)."""
    repo, run = _repo(tmp_path)
    then = _commit(repo, run, "a")
    _commit(repo, run, "b")
    paths = [repo / "fleet"]
    return paths, build(loader.load(paths)[0]), then


def test_arrivals_from_an_unread_host_only(moved):
    paths, manifest, then = moved
    got, warnings = history.arrivals(paths, manifest, {"b": _state("b", then)})
    assert warnings == []
    assert {(a.kind, a.name) for a in got} == {("Guest", "db"), ("Volume", "vms/db.qcow2"), ("Guest", "web-1"),
                                               ("Guest", "web-2")}
    assert got[0] == Arrival("b", got[0].kind, got[0].name, "a", then)
    # what is already on the host is no arrival; nor is anything when every host is read
    got, _ = history.arrivals(paths, manifest, {"b": _state("b", then, ("Guest", "db"), ("Guest", "web-1"))})
    assert {(a.kind, a.name) for a in got} == {("Volume", "vms/db.qcow2"), ("Guest", "web-2")}
    assert history.arrivals(paths, manifest, {"a": _state("a", then), "b": _state("b", then)}) == ([], [])
    # a host that never applied from git: nothing can have moved to it
    assert history.arrivals(paths, manifest, {"b": _state("b", "")}) == ([], [])
    # a commit git does not have: said, not guessed
    got, warnings = history.arrivals(paths, manifest, {"b": _state("b", "c" * 40)})
    assert got == [] and "cannot be read from git" in warnings[0]


def test_a_plan_neither_creates_an_arrival_nor_prunes_what_leaves_for_an_unread_host(moved):
    from reconciler import pipeline
    paths, manifest, then = moved
    b = _state("b", then)
    plan = pipeline.make_plan(manifest, {"b": b}, arrivals=history.arrivals(paths, manifest, {"b": b}))
    text = "\n".join(plan.problems)
    made = {(x.kind, x.name) for x in plan.actions}
    assert made == {("StoragePool", "vms")}, made        # the rest of the host is planned; no arrival
    assert "guests.yml:6: Guest db moves to host 'b' from host 'a'" in text, text
    assert f"declared there at {then[:12]}" in text and "Volume vms/db.qcow2 moves" in text
    # the old host, read alone with prune: its guest is kept, and said why
    a = _state("a", then, ("Guest", "db"))
    marker = b.objects[("Network", "n")].xml.split("<metadata>")[1].split("</metadata>")[0]
    a.objects[("Guest", "db")] = LiveObject("Guest", "db", f"<domain><name>db</name><uuid>{'1' * 8}-1111-1111-"
                                            f"1111-{'1' * 12}</uuid><metadata>{marker}</metadata></domain>")
    plan = pipeline.make_plan(manifest, {"a": a}, pipeline.PlanOptions(prune=True))
    deleted = {(x.kind, x.name) for x in plan.actions if x.action == "delete"}
    assert deleted == {("Network", "n")}, deleted       # pruning is on: the network that left goes
    assert {"address": "a/Guest/db", "reason": "owned, now declared on host 'b', which this run does not read; "
            "kept (a run that reads both hosts moves it)"} in plan.kept
