"""CPU model, flags, topology, NUMA cells, pinning, memory hot-plug, balloon, KSM opt-out, SMM,
PMU, I/O APIC, a panic device and per-device boot order on the real daemon: a running guest gets
them, each change waits for a restart, a flag added by hand stays, and adopt writes them back
and plans empty."""
from __future__ import annotations

import json

import libvirt
import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd

SPEC = """\
  machine: q35
  vcpus: 4
  memory: {max: 256MiB, hotplug: {max: 1GiB, slots: 2}}
  cpu:
    model: qemu64
    fallback: allow
    features:
      - {name: x2apic, policy: require}
    topology: {sockets: 1, cores: 2, threads: 2}
    numa:
      - {id: 0, cpus: "0-1", memory: 128MiB}
      - {id: 1, cpus: "2-3", memory: 128MiB}
  cputune:
    vcpupin:
      - {vcpu: 0, cpuset: "0"}
      - {vcpu: 1, cpuset: "1"}
    emulatorpin: "0-1"
  balloon: none
  memory_backing: {nosharepages: true}
  features: {pmu: false, ioapic: qemu, smm: false}
  panic: {model: isa}
  disks:
    - {path: IMAGE, boot_order: 1}
"""


def test_cpu_memory_and_boot_order_on_a_running_guest(env):
    image = IMAGES / f"{env.prefix}-cpu.img"
    image.write_bytes(b"\0" * 1024 * 1024)
    path = env.write(small_guest("P-cpu", SPEC.replace("IMAGE", str(image))).replace("  vcpus: 1\n  memory: 128MiB\n", "", 1))
    env.converge()
    dom = env.lookup("cpu")
    assert dom.isActive()
    live = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)      # (the running CPU is libvirt's expansion)
    for part in ("<maxMemory slots='2' unit='KiB'>1048576</maxMemory>", "<model fallback='allow'>qemu64</model>",
                 "<topology sockets='1' dies='1' cores='2' threads='2'/>", "<feature policy='require' name='x2apic'/>",
                 "<cell id='1' cpus='2-3' memory='131072' unit='KiB'/>", "<vcpupin vcpu='1' cpuset='1'/>",
                 "<emulatorpin cpuset='0-1'/>", "<memballoon model='none'/>", "<nosharepages/>",
                 "<pmu state='off'/>", "<ioapic driver='qemu'/>", "<smm state='off'/>", "<panic model='isa'",
                 "<boot order='1'/>"):
        assert part in live, part
    assert "<boot dev=" not in live                          # per-device order: no <os> boot list

    # a flag added by hand stays; a stated one changed by hand is drift
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace(
        "<feature policy='require' name='x2apic'/>",
        "<feature policy='disable' name='x2apic'/><feature policy='require' name='sse4.1'/>")
    env.conn.defineXML(xml)
    done = env.run("drift", str(env.dir), "--json")
    drifted = [c["path"] for f in json.loads(done.stdout)["findings"] if f["class"] == "drift" for c in f["changes"]]
    assert drifted == ["cpu.features[0].policy"], done.stdout

    # changes of topology and pinning wait for a restart
    path.write_text(path.read_text().replace("{sockets: 1, cores: 2, threads: 2}", "{sockets: 2, cores: 2, threads: 1}")
                    .replace('{vcpu: 1, cpuset: "1"}', '{vcpu: 1, cpuset: "0"}'))
    code, doc = env.plan()
    changes = {c["path"]: c["impact"] for c in doc["changes"][0]["changes"]}
    assert changes == {"cpu.features[0].policy": "restart", "cpu.topology.sockets": "restart",
                       "cpu.topology.threads": "restart", "cputune.vcpupin[1].cpuset": "restart"}, changes
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    saved = env.lookup("cpu").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<topology sockets='2' dies='1' cores='2' threads='1'/>" in saved and "name='sse4.1'" in saved
    assert "<feature policy='require' name='x2apic'/>" in saved and "<vcpupin vcpu='1' cpuset='0'/>" in saved

    # adopt writes every field back and plans empty
    text = env.readopt(path, "cpu")
    for part in ("hotplug: {max: 1GiB, slots: 2}", "model: qemu64", "fallback: allow", "name: sse4.1",
                 "sockets: 2", "cpus: 2-3", "memory: 128MiB", "emulatorpin: 0-1", "balloon: none",
                 "nosharepages: true", "pmu: false", "ioapic: qemu", "smm: false", "panic: {model: isa}",
                 "boot_order: 1"):
        assert part in text, (part, text)
    code, doc = env.plan()
    assert code == 0, doc
