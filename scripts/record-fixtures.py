"""Re-record tests/data/recorded/*.xml from the real daemon.

Usage: apply tests/data/manifests/recorded (with its cdrom media file present) to qemu:///system,
then run: .venv/bin/python scripts/record-fixtures.py
"""
from pathlib import Path

import libvirt

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "recorded"
conn = libvirt.openReadOnly("qemu:///system")
dom = conn.lookupByName("web-1")
(OUT / "guest-inactive.xml").write_text(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
(OUT / "guest-running.xml").write_text(dom.XMLDesc(0))
inventory = conn.lookupByName("virt-reconcile-inventory-default")
(OUT / "inventory-default.xml").write_text(inventory.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
net = conn.networkLookupByName("demo-net")
(OUT / "network-inactive.xml").write_text(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
(OUT / "network-running.xml").write_text(net.XMLDesc(0))
pool = conn.storagePoolLookupByName("demo-pool")
(OUT / "pool-inactive.xml").write_text(pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE))
for vol in pool.listAllVolumes():
    (OUT / f"volume-{vol.name()}.xml").write_text(vol.XMLDesc(0))
