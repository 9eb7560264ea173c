"""Redefinition keeps what libvirt owns: PCI addresses, controllers, foreign metadata."""
from __future__ import annotations

from reconciler import carry, fields, ownership, rng
from tests.helpers import recorded
from tests.unit.test_normalise import state, wanted


def test_addresses_and_unmanaged_devices_are_carried():
    saved = recorded("guest-inactive.xml")
    merged = fields.parse(carry.domain(wanted("Guest", "web-1", state()).xml, saved))
    old = fields.parse(saved)
    for target in ("vda", "vdb"):
        xp = f"devices/disk[target/@dev='{target}']/address"
        assert merged.xpath(xp) and merged.xpath(xp)[0].attrib == old.xpath(xp)[0].attrib
    nic = "devices/interface/address"
    assert merged.xpath(nic)[0].attrib == old.xpath(nic)[0].attrib
    assert len(merged.xpath("devices/controller")) == len(old.xpath("devices/controller"))
    assert merged.xpath("devices/memballoon") and merged.xpath("clock") and merged.xpath("on_crash")


def test_foreign_metadata_survives_and_result_is_valid():
    saved = recorded("guest-inactive.xml").replace(
        "</metadata>", '<os:libosinfo xmlns:os="http://libosinfo.org/xmlns/libvirt/domain/1.0"/></metadata>')
    want = wanted("Guest", "web-1", state())
    merged = carry.domain(want.xml, saved)
    root = fields.parse(merged)
    assert root.xpath("metadata/*[local-name()='libosinfo']")
    assert ownership.owner_hash(merged) == want.hash
    assert rng.errors("Guest", merged) == []


def test_new_guest_is_rendered_as_is():
    want = wanted("Guest", "web-1", state())
    assert carry.domain(want.xml, None) == want.xml
