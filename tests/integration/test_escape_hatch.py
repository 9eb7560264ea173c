"""The escape hatch on the real daemon: XML edits (set, add, remove) reach a running guest's saved
definition in place and wait for a restart; an edit that holds is no change; an edit libvirt's
schema refuses stops the plan at its manifest; adopt keeps what the edits made and plans empty."""
from __future__ import annotations

import libvirt
import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

EDITS = """\
  xml:
    - {set: "features/vmcoreinfo/@state", value: "on"}
    - {add: '<shmem name="P-shm"><model type="ivshmem-plain"/><size unit="M">4</size></shmem>'}
    - {remove: "devices/watchdog"}
"""


def test_xml_edits_are_made_in_place_and_checked(env):
    path = env.write(small_guest("P-hatch", EDITS))
    env.converge()
    dom = env.lookup("hatch")
    saved = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<vmcoreinfo state='on'/>" in saved and f"<shmem name='{env.prefix}-shm'>" in saved
    assert dom.isActive()

    # by hand: a watchdog (the manifest removes any) and vmcoreinfo off
    xml = saved.replace("<vmcoreinfo state='on'/>", "<vmcoreinfo state='off'/>").replace(
        "</devices>", "<watchdog model='i6300esb' action='reset'/></devices>")
    env.conn.defineXML(xml)
    done = env.run("drift", str(env.dir))
    assert done.returncode == 2 and "xml[2]" in done.stdout and "xml[0]" in done.stdout, done.stdout
    code, doc = env.plan()
    changes = {c["path"]: (c["impact"], c["before"], c["after"]) for c in doc["changes"][0]["changes"]}
    assert changes == {
        "xml[0]": ("restart", {"set": "features/vmcoreinfo/@state", "value": "off"},
                   {"set": "features/vmcoreinfo/@state", "value": "on"}),
        "xml[2]": ("restart", {"remove": "devices/watchdog", "found": 1}, {"remove": "devices/watchdog"})}, changes
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    saved = env.lookup("hatch").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<vmcoreinfo state='on'/>" in saved and "<watchdog" not in saved
    assert saved.count(f"<shmem name='{env.prefix}-shm'>") == 1               # added once, kept

    # an edit libvirt's schema refuses is a plan error naming the manifest; nothing changes
    path.write_text(path.read_text().replace('value: "on"', 'value: "sideways"'))
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1 and "libvirt's schema refuses" in done.stderr and "m.yaml:" in done.stderr, done.stderr
    done = env.run("apply", str(env.dir), "--auto-approve")
    assert done.returncode == 1
    assert env.lookup("hatch").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == saved
    path.write_text(path.read_text().replace('value: "sideways"', 'value: "on"'))

    # adopt: the edits' results stay (unmanaged parts), the plan is empty
    text = env.readopt(path, "hatch")
    assert "xml:" not in text
    code, doc = env.plan()
    assert code == 0, doc
    saved = env.lookup("hatch").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<vmcoreinfo state='on'/>" in saved and f"<shmem name='{env.prefix}-shm'>" in saved
