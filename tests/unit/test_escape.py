"""The escape hatch's edits (escape.py) on a definition recorded from the real daemon: an edit that
holds is no change, one that does not is made in place, and nothing else of the definition moves."""
from __future__ import annotations

from reconciler import escape, fields
from tests.helpers import recorded

EDITS = [{"set": "features/vmcoreinfo/@state", "value": "on"},
         {"add": '<shmem name="s"><model type="ivshmem-plain"/><size unit="M">4</size></shmem>'},
         {"remove": "devices/graphics"}]


def test_edits_are_changes_until_made_then_hold():
    base = fields.parse(recorded("guest-inactive.xml"))
    before = fields.read("Guest", base)
    changes = escape.changes(EDITS, base)
    assert [c.path for c in changes] == ["xml_edits.0", "xml_edits.1", "xml_edits.2"]
    assert changes[2].before == {"remove": "devices/graphics", "found": 1}
    for change in changes:
        escape.apply(base, change.after)
    assert escape.changes(EDITS, base) == []
    escape.apply(base, escape.wanted(EDITS[1]))                   # added once: the same element is not added again
    assert len(base.xpath("devices/shmem")) == 1
    after = fields.read("Guest", base)
    assert {k: v for k, v in after.items() if k != "graphics"} == {k: v for k, v in before.items() if k != "graphics"}
    assert fields.manifest_path("Guest", ["xml_edits", "2"], {}) == "xml[2]"
