"""Hyper-V enlightenments, clock and lifecycle actions on the real daemon (the set virt-install
writes for Windows): a guest gets them and converges; a feature never stated, added by hand,
stays; one stated, changed by hand, is drift and comes back."""
from __future__ import annotations

import json

import libvirt
import pytest

from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

WINDOWS = """\
  features:
    vmport: false
    hyperv: {relaxed: true, vapic: true, spinlocks: 8191}
  clock:
    offset: localtime
    timers:
      - {name: rtc, tickpolicy: catchup}
      - {name: pit, tickpolicy: delay}
      - {name: hpet, present: false}
      - {name: hypervclock, present: true}
  on_crash: destroy
"""


def test_windows_features_clock_and_lifecycle(env):
    env.write(small_guest("P-win", WINDOWS))
    env.converge()
    live = env.lookup("win").XMLDesc(0)
    for part in ("<relaxed state='on'/>", "<spinlocks state='on' retries='8191'/>", "<vmport state='off'/>",
                 "<clock offset='localtime'>", "<timer name='hpet' present='no'/>", "<on_crash>destroy</on_crash>",
                 "<acpi/>", "<apic/>"):
        assert part in live, part
    xml = env.lookup("win").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    xml = xml.replace("<acpi/>", "<acpi/><pae/>").replace("<relaxed state='on'/>", "<relaxed state='off'/>")
    env.conn.defineXML(xml)                   # by hand: pae (never stated) and relaxed (stated) changed
    done = env.run("drift", str(env.dir), "--json")
    findings = json.loads(done.stdout)["findings"]
    drifted = [c["path"] for f in findings if f["class"] == "drift" for c in f["changes"]]
    assert drifted == ["features.hyperv.relaxed"], findings
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    saved = env.lookup("win").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<relaxed state='on'/>" in saved and "<pae/>" in saved
