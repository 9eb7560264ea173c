"""Pure parts of the GitOps workflow: adopt round trip, ownership records, locks, markdown, git."""
from __future__ import annotations

import subprocess

from reconciler import adopt, desired, drift, fields, gitinfo, locking, ownership, report
from reconciler.diff import diff
from reconciler.manifest import build
from reconciler.loader import SourceDoc
from reconciler.plan import Action, Change, Plan
from tests.helpers import recorded
from tests.unit.test_normalise import LIVE, state, wanted

HOST = {"kind": "Host", "metadata": {"name": "local"}, "spec": {"uri": "qemu:///system"}}


def test_adopted_documents_reproduce_the_live_fields():
    """adopt writes what plan will render back to the same canonical fields (so no changes)."""
    docs = [SourceDoc("h.yaml", 0, HOST)]
    for (kind, name), obj in LIVE.items():
        if not ownership.is_internal(kind, name):
            docs.append(SourceDoc(f"{kind}.yaml", 0, adopt.document(kind, name, "local", obj.xml, obj.active,
                                                                       obj.autostart)))
    manifest = build(docs)
    for item in manifest.items.values():
        want = desired.build(item, manifest, state())
        live = LIVE[(item.ref.kind, item.ref.name)]
        assert diff(want.fields, fields.read(item.ref.kind, live.xml)) == [], item.ref


def test_adopt_leaves_out_what_the_models_cannot_hold_and_keeps_it_unmanaged():
    xml = recorded("guest-inactive.xml").replace(
        "<graphics type='vnc'", "<graphics type='egl-headless'/><graphics type='vnc'").replace(
        "<target dev='vdb' bus='virtio'/>", "<target dev='vdb' bus='xen'/>")
    doc = adopt.document("Guest", "web-1", "local", xml, True, True)
    assert [d["target"] for d in doc["spec"]["disks"]] == ["vda", "sda"]     # vdb on a bus not modelled
    assert doc["spec"]["graphics"]["type"] == "vnc"
    assert any(p.startswith("devices/graphics") for p in fields.unmanaged("Guest", xml))
    net = adopt.document("Network", "n", "local", "<network><name>n</name><forward mode='nat'/>"
                         "<ip address='10.1.0.1' prefix='24'/><ip family='ipv6' address='fd00::1' prefix='64'/>"
                         "<dns><host ip='10.1.0.5'><hostname>x</hostname></host></dns></network>", True, True)
    assert net["spec"]["ipv4"] == {"address": "10.1.0.1/24"}
    try:
        adopt.document("StoragePool", "p", "local", "<pool type='zfs'><name>p</name><source><name>tank"
                       "</name></source></pool>", True, True)
    except Exception as exc:   # noqa: BLE001
        assert "cannot hold its type='zfs'" in str(exc)
    else:
        raise AssertionError("a pool type the model lacks cannot be adopted")


def test_adopt_yaml_quotes_macs():
    doc = adopt.document("Network", "demo-net", "local", recorded("network-inactive.xml"), True, True)
    assert '"52:54:00:d3:00:01"' in adopt.yaml_text(doc)


def test_records_read_markers_and_inventory():
    owned = ownership.records(state(), "default")
    assert set(owned) == {k for k in LIVE if not ownership.is_internal(*k)}
    assert owned[("Volume", "demo-pool/web-1-data.qcow2")].protect is True
    assert owned[("Guest", "web-1")].commit and owned[("Guest", "web-1")].fields["machine"] == "q35"
    assert ownership.records(state(), "other") == {}


def test_inventory_entries_are_replaced_and_removed():
    xml = recorded("inventory-default.xml")
    record = {"kind": "Volume", "name": "p/v", "uuid": None, "instance": "default", "hash": "h", "commit": "c",
              "dirty": True, "protect": False, "applied": "t", "record": '{"fields": {}}'}
    added = ownership.inventory_with(xml, "default", "Volume", "p/v", record)
    doc = f"<domain><metadata>{added}</metadata></domain>"
    entries = ownership.read_inventory(doc)
    assert entries[("Volume", "p/v")].dirty is True and len(entries) == 4
    removed = ownership.inventory_with(doc, "default", "Volume", "p/v", None)
    assert ("Volume", "p/v") not in ownership.read_inventory(f"<domain><metadata>{removed}</metadata></domain>")


def test_drift_classify_in_sync_and_after_an_edit():
    manifest_state = state()
    want = wanted("Guest", "web-1", manifest_state)
    from reconciler import pipeline
    from tests.helpers import DATA
    manifest = pipeline.load([DATA / "manifests" / "recorded"])
    found = drift.classify(manifest, "local", manifest_state, desired.Context())
    assert drift.in_sync(found), found
    edited = dict(manifest_state.objects)
    old = edited[("Guest", "web-1")]
    edited[("Guest", "web-1")] = type(old)("Guest", "web-1", old.xml.replace("<vcpu placement='static'>2",
                                                                              "<vcpu placement='static'>3"),
                                           old.active, old.autostart, old.live_xml)
    manifest_state.objects = edited
    found = drift.classify(manifest, "local", manifest_state, desired.Context())
    assert [(f.klass, f.name, f.changes) for f in found if f.klass == "drift"] == [
        ("drift", "web-1", [{"path": "vcpus.current", "before": 3, "after": 2},
                            {"path": "vcpus.max", "before": 3, "after": 2}])]
    assert want.hash


def test_lock_descriptions():
    lock = locking.Lock("i", "apply", pid=999999)
    assert "STALE" in lock.describe() and "process 999999" in lock.describe()
    assert locking.parse(locking.lock_xml(lock).split("<description>")[1].split("</description>")[0]
                         .replace("&#34;", '"')) == lock
    live = locking.Lock("i", "apply")
    assert "STALE" not in live.describe()


def _plan(n: int) -> Plan:
    actions = [Action("h", "Guest", f"g{i}", "update", "live", "why", [Change("memory.max", 1, 2, "live")])
               for i in range(n)]
    actions.append(Action("h", "Volume", "p/v", "recreate", "destructive", "format", []))
    return Plan({"h": "qemu:///system"}, actions, git={"commit": "abcdef1234567890", "dirty": True})


def test_markdown_flags_destructive_first_and_is_cut_below_the_limit():
    text = report.plan_markdown(_plan(3))
    assert text.index("destructive") < text.index("<details>")
    assert "abcdef123456 + uncommitted changes" in text
    big = report.plan_markdown(_plan(3000), limit=20000)
    assert len(big) <= 20000 and "it was cut" in big and big.count("```") % 2 == 0


def test_git_provenance(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "m.yaml").write_text("x: 1\n")
    run("add", ".")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "m")
    clean = gitinfo.provenance([repo])
    assert len(clean.commit) == 40 and clean.dirty is False
    (repo / "m.yaml").write_text("x: 2\n")
    assert gitinfo.provenance([repo]).dirty is True
    assert gitinfo.provenance([tmp_path]).commit == ""


def test_inventory_classifies_other_instances_and_unmanaged():
    from reconciler.inventory import host_inventory
    from reconciler.live import LiveObject
    st = state()
    st.objects[("Network", "hand")] = LiveObject("Network", "hand", "<network><name>hand</name></network>")
    entries = {(e.kind, e.name): e for e in host_inventory(st, "other")}
    assert entries[("Network", "hand")].status == "unmanaged"
    assert entries[("Guest", "web-1")].status == "other-instance" and entries[("Guest", "web-1")].instance == "default"
    assert entries[("StoragePool", "demo-pool")].status == "other-instance"
    assert ("Guest", "virt-reconcile-inventory-default") not in entries
    mine = {(e.kind, e.name): e.status for e in host_inventory(st, "default")}
    assert mine[("Guest", "web-1")] == "managed" and mine[("Network", "hand")] == "unmanaged"


def test_volumes_of_an_inactive_pool_are_unknown_not_missing():
    from reconciler import pipeline
    from reconciler.live import LiveObject
    from reconciler.prune import plan_prune
    from tests.helpers import DATA
    st = state()
    pool = st.objects[("StoragePool", "demo-pool")]
    st.objects[("StoragePool", "demo-pool")] = LiveObject("StoragePool", "demo-pool", pool.xml, False, True)
    st.listed_pools = set()
    for key in [k for k in st.objects if k[0] == "Volume"]:
        del st.objects[key]                      # an inactive pool's volumes cannot be listed
    manifest = pipeline.load([DATA / "manifests" / "recorded"])
    found = {(f.klass, f.kind) for f in drift.classify(manifest, "local", st, desired.Context())}
    assert ("runtime", "Volume") in found and ("missing", "Volume") not in found
    owned = ownership.records(st, "default")
    for rec in owned.values():
        rec.protect = False                      # even unprotected, an unreadable volume is kept
    actions, problems = plan_prune("local", set(), owned, st)
    assert not [a for a in actions if a.kind == "Volume"] and problems == []
    assert [a.kind for a in actions] == ["Guest", "StoragePool", "Network"]


def test_adopt_converges_leaving_out_what_would_not_round_trip():
    """A disk without a driver type (the manifest writes raw) would change on the first apply:
    adopt leaves it out, so it stays unmanaged and the plan after adopt is empty. VNC without a
    listen address is adopted as `listen: default` (qemu.conf's address) and round-trips."""
    from reconciler.live import LiveObject
    from reconciler.manifest import Ref
    xml = recorded("guest-inactive.xml").replace(
        "<driver name='qemu' type='raw'/>", "").replace(" listen='127.0.0.1'", "")
    xml = xml[:xml.index("<graphics")] + xml[xml.index("<graphics"):].replace(
        "<listen type='address' address='127.0.0.1'/>", "", 1)
    host_state = state()
    host_state.objects[("Guest", "web-1")] = LiveObject("Guest", "web-1", xml, True, True)
    left_out: list[str] = []
    doc = adopt.document("Guest", "web-1", "local", xml, True, True, left_out)
    have = fields.read("Guest", xml)

    def still_changed(doc):
        others = [SourceDoc(f"{k}.yaml", 0, adopt.document(k, n, "local", o.xml, o.active, o.autostart))
                  for (k, n), o in LIVE.items() if k != "Guest" and not ownership.is_internal(k, n)]
        manifest = build([SourceDoc("h.yaml", 0, HOST), SourceDoc("g.yaml", 0, doc), *others])
        want = desired.build(manifest.items[Ref("local", "Guest", "web-1")], manifest, host_state)
        return [fields.manifest_location("Guest", c.parts, want.index) for c in diff(want.fields, have)]

    assert still_changed(doc)            # as first written, a plan would change it
    adopt.converge("Guest", "web-1", doc, still_changed, left_out)
    assert still_changed(doc) == []
    assert left_out == ["disks[sda]"]
    assert doc["spec"]["cpu"] == {"mode": "custom", "model": "qemu64", "fallback": "forbid"}   # a named model
    assert [d["target"] for d in doc["spec"]["disks"]] == ["vda", "vdb"]
    assert doc["spec"]["graphics"] == {"type": "vnc", "listen": "default"}


def test_adopt_refuses_only_for_fields_libvirt_needs():
    import pytest
    from reconciler.errors import ReconcilerError
    xml = recorded("guest-inactive.xml").replace("<type arch='x86_64' machine='", "<type arch='x86_64' machine='isapc")
    with pytest.raises(ReconcilerError, match="cannot hold its machine='isapc"):
        adopt.document("Guest", "web-1", "local", xml, True, True)


def test_every_new_kind_and_field_of_the_wide_manifests_adopts_back():
    """Adopt the rendered Secrets, Bridges, Networks, pools and volumes of the wide manifests:
    planning the adopted documents gives the same fields back, but for what adopt says it left
    out (a passphrase it cannot know, a backing file named by its path)."""
    from tests.unit.test_declarations import wide
    rendered = {ref: want for ref, want in wide().items() if ref.kind != "Guest"}
    host = {"kind": "Host", "metadata": {"name": "local"}, "spec": {"uri": "qemu:///system", "network_config": "ifupdown"}}
    docs, left = [SourceDoc("h.yaml", 0, host)], {}
    for ref, want in rendered.items():
        left[ref] = []
        docs.append(SourceDoc(f"{ref.kind}.yaml", 0, adopt.document(ref.kind, ref.name, "local", want.xml, True, True,
                                                                    left[ref])))
    manifest = build(docs)
    for ref, want in rendered.items():
        again = desired.build(manifest.items[ref], manifest, state())
        differs = {fc.path.split(".")[0] for fc in diff(again.fields, fields.read(ref.kind, want.xml))}
        expected = {path.split(".")[0].split("[")[0] for path in left[ref]} | {"persisted", "value"}
        assert differs <= expected, (ref, differs, left[ref])
