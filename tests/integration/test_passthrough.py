"""NIC bandwidth (live), VLAN tags, an SR-IOV VF as a NIC, PCI/USB/mediated host devices and a
TPM passthrough on the real daemon. This machine has no devices to give away: those guests are
defined (libvirt checks devices only at start) and never started."""
from __future__ import annotations

import libvirt
import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

NET = """\
---
kind: Network
metadata: {name: P-qos}
spec: {forward: isolated, bridge: P-qb, autostart: false}
"""

QOS = """\
  interfaces:
    - {network: P-qos, mac: "52:54:00:5f:00:01", portgroup: web, vlan: [10, 20],
       bandwidth: {inbound: {average: 1000, peak: 2000, burst: 256}, outbound: {average: 500}}}
"""

DEVICES = """\
  interfaces:
    - {hostdev: "0000:7f:10.2", mac: "52:54:00:5f:00:02", vlan: [42]}
  hostdevs:
    - {pci: "0000:7f:00.0", managed: true, rom_bar: false}
    - {pci: "0000:7f:00.1", managed: true}
    - {usb: {vendor: "046d", product: "c52b"}}
    - {usb: {bus: 1, device: 4}}
    - {mdev: c2177883-f1bb-47f0-914d-32a22e3a8804, display: false}
  tpm: {model: tpm-tis, backend: passthrough, device: /dev/tpm0}
"""


def test_bandwidth_portgroup_and_vlan_are_defined_and_changed(env):
    """(This kernel has neither the sfq qdisc nor tc's police action: a guest with bandwidth
    limits cannot start here, so the live update is shown by tests/unit/test_planners.py.)"""
    path = env.write(small_guest("P-qos", QOS).replace("state: running", "state: shutoff") + NET)
    env.converge()
    saved = env.lookup("qos").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for part in ("portgroup='web'", "<vlan trunk='yes'>", "<tag id='20'/>",
                 "<inbound average='1000' peak='2000' burst='256'/>", "<outbound average='500'/>"):
        assert part in saved, part
    path.write_text(path.read_text().replace("average: 1000, peak: 2000", "average: 500, peak: 800")
                    .replace("vlan: [10, 20]", "vlan: [30]"))
    code, doc = env.plan()
    assert sorted(c["path"] for c in doc["changes"][0]["changes"]) == [
        "interfaces[0].bandwidth.inbound.average", "interfaces[0].bandwidth.inbound.peak", "interfaces[0].vlan"]
    env.converge()
    saved = env.lookup("qos").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<inbound average='500' peak='800' burst='256'/>" in saved and "<tag id='30'/>" in saved
    assert "trunk" not in saved and "<tag id='10'/>" not in saved


def test_host_devices_are_defined_and_adopted(env):
    path = env.write(small_guest("P-gpu", DEVICES).replace("state: running", "state: shutoff"))
    env.converge()
    saved = env.lookup("gpu").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for part in ("<interface type='hostdev' managed='yes'>", "bus='0x7f' slot='0x10' function='0x2'", "<tag id='42'/>",
                 "<rom bar='off'/>", "function='0x1'", "<vendor id='0x046d'/>", "<address bus='1' device='4'/>",
                 "uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'", "<backend type='passthrough'>",
                 "<device path='/dev/tpm0'/>"):
        assert part in saved, part
    text = env.readopt(path, "gpu")
    for part in ('hostdev: "0000:7f:10.2"', "vlan: [42]", 'pci: "0000:7f:00.0"', "rom_bar: false", "vendor: 046d",
                 "product: c52b", "bus: 1", "mdev: c2177883-f1bb-47f0-914d-32a22e3a8804", "backend: passthrough",
                 "device: /dev/tpm0"):
        assert part in text, (part, text)
    code, doc = env.plan()
    assert code == 0, doc
