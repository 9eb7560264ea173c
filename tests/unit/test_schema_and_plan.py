"""The committed JSON Schema is current; plans survive a JSON round trip."""
from __future__ import annotations

import json

import pytest

from reconciler.errors import PlanFileError
from reconciler.plan import Plan
from reconciler.schema import schema_text
from tests.helpers import REPO
from tests.unit.test_planners import plan_for


def test_committed_schema_is_current():
    committed = (REPO / "schemas" / "manifest.schema.json").read_text()
    assert committed == schema_text(), "run: virt-reconcile schema --out schemas/manifest.schema.json"


def test_schema_knows_every_kind():
    kinds = {d["properties"]["kind"]["const"] for d in json.loads(schema_text())["$defs"].values()
             if "kind" in d.get("properties", {})}
    assert kinds == {"Host", "Bridge", "Secret", "Network", "StoragePool", "Volume", "Guest", "GuestClass", "GuestSet"}


def test_plan_round_trip(tmp_path):
    action = plan_for(tmp_path, "Guest", "web-1", [("guest.yaml", "current: 384MiB", "current: 512MiB")])
    plan = Plan(hosts={"local": "qemu:///system"}, actions=[action])
    plan.save(tmp_path / "p.json")
    again = Plan.load(tmp_path / "p.json")
    assert again.actions == plan.actions and again.hosts == plan.hosts
    doc = plan.to_json(with_ops=False)
    change = doc["changes"][0]
    assert doc["format_version"] == "1.0"
    assert {"host", "kind", "name", "action", "impact", "reason", "changes"} <= set(change)
    assert change["changes"][0] == {"path": "memory.current", "before": 384 * 1024**2,
                                    "after": 512 * 1024**2, "impact": "live"}
    assert "ops" not in change


def test_plan_of_another_major_version_is_refused(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"format_version": "2.0", "changes": []}))
    with pytest.raises(PlanFileError):
        Plan.load(tmp_path / "p.json")


def test_saved_plan_of_another_tool_version_is_refused_before_reading_hosts():
    from reconciler import pipeline
    from reconciler.errors import PlanError
    old = Plan(hosts={"h": "qemu+unix:///system?socket=/nonexistent"}, tool_version="0.0.1")
    with pytest.raises(PlanError, match="made by virt-reconcile 0.0.1"):
        pipeline.check_saved(old)


def test_a_saved_plan_holds_only_declared_operations(tmp_path):
    """Ops are typed (plan.OpName): a plan file naming anything else is refused when it is read."""
    import json
    from reconciler.errors import PlanFileError
    from reconciler.plan import Plan
    doc = {"format_version": "1.0", "tool_version": "0.1.0", "created_at": "now", "hosts": {"h": "qemu:///system"},
           "changes": [{"host": "h", "kind": "Guest", "name": "g", "action": "update", "impact": "live",
                        "reason": "", "ops": [{"name": "start", "args": {}}]}]}
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc))
    assert Plan.load(good).actions[0].ops[0].name.value == "start"
    doc["changes"][0]["ops"][0]["name"] = "__init__"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    try:
        Plan.load(bad)
    except PlanFileError as exc:
        assert "'__init__' is not a valid OpName" in str(exc)
    else:
        raise AssertionError("an undeclared operation was accepted")


def test_every_op_has_a_step():
    from reconciler import steps
    from reconciler.plan import OpName
    assert set(steps.STEPS) == set(OpName)


class _SlowGuest:
    """A host whose guest never stops on ACPI: the shutdown policy must give up or power off."""

    name, uri = "h", "qemu:///system"

    def __init__(self):
        self.calls = []

    def is_active(self, kind, name):
        return "stop" not in self.calls

    def shutdown(self, kind, name):
        self.calls.append("shutdown")

    def stop(self, kind, name):
        self.calls.append("stop")


def test_shutdown_waits_then_fails_or_powers_off(monkeypatch):
    import pytest
    from reconciler import steps
    from reconciler.errors import AdapterError
    monkeypatch.setattr(steps, "POLL", 0.01)
    host = _SlowGuest()
    with pytest.raises(AdapterError, match="did not shut down within 0.05 s"):
        steps.shutdown(host, "Guest", "g", 0.05, force=False)
    assert host.calls == ["shutdown"]
    host = _SlowGuest()
    steps.shutdown(host, "Guest", "g", 0.05, force=True)
    assert host.calls == ["shutdown", "stop"]
