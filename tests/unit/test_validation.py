"""Bad input: every problem reported with file:line and field, before any libvirt call."""
from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler import pipeline
from reconciler.errors import ManifestError

from tests.helpers import REPO, write

HOST = """\
kind: Host
metadata: {name: local}
spec: {uri: "qemu:///system"}
---
"""


def problems(tmp_path, text: str) -> list[str]:
    path = write(tmp_path, "m.yaml", HOST + text)
    with pytest.raises(ManifestError) as exc:
        pipeline.load([path])
    return [str(d).replace(str(path.parent) + "/", "") for d in exc.value.diagnostics]


def test_quickstart_is_valid():
    manifest = pipeline.load([REPO / "examples" / "quickstart"])
    assert {r.kind for r in manifest.items} == {"Network", "StoragePool", "Volume", "Guest"}


def test_broken_yaml_names_file_and_line(tmp_path):
    found = problems(tmp_path, "kind: Guest\nmetadata: {name: a\nspec: {}\n")
    assert len(found) == 1 and "m.yaml:7" in found[0] and "YAML syntax" in found[0]


def test_duplicate_yaml_key(tmp_path):
    found = problems(tmp_path, "kind: Network\nkind: Network\nmetadata: {name: n}\nspec: {}\n")
    assert found == ["m.yaml:6: kind: duplicate key 'kind' (first at line 5)"]


def test_wrong_types_unknown_fields_and_impossible_values(tmp_path):
    found = problems(tmp_path, """\
kind: Guest
metadata: {name: g}
spec:
  vcpus: 0
  memory: {current: 2GiB, max: 1GiB}
  colour: blue
  autostart: "maybe"
""")
    assert "m.yaml:8: spec.vcpus.max: Input should be greater than or equal to 1" in found
    assert "m.yaml:9: spec.memory: current (2GiB) is above max (1GiB)" in found
    assert "m.yaml:10: spec.colour: unknown field" in found
    assert any(f.startswith("m.yaml:11: spec.autostart:") for f in found)


def test_unknown_kind_and_missing_spec(tmp_path):
    found = problems(tmp_path, "kind: Firewall\nmetadata: {name: f}\n---\nkind: Network\nmetadata: {name: n}\n")
    assert any("m.yaml:5: kind: unknown kind 'Firewall'" in f for f in found)
    assert any("m.yaml:8: spec: Field required" in f for f in found)


def test_dangling_references(tmp_path):
    found = problems(tmp_path, """\
kind: Volume
metadata: {name: v.qcow2}
spec: {pool: nopool, capacity: 1GiB}
---
kind: Guest
metadata: {name: g}
spec:
  vcpus: 1
  memory: 128MiB
  disks: [{volume: nopool/missing.qcow2}]
  interfaces: [{network: nonet}]
""")
    assert "m.yaml:7: spec.pool: no StoragePool 'nopool' is declared on host 'local'" in found
    assert "m.yaml:14: spec.disks.0.volume: no Volume 'nopool/missing.qcow2' is declared on host 'local'" in found
    assert "m.yaml:15: spec.interfaces.0.network: no Network 'nonet' is declared on host 'local'" in found


def test_duplicates_and_overlaps(tmp_path):
    found = problems(tmp_path, """\
kind: Network
metadata: {name: a}
spec: {forward: isolated, ipv4: {address: 10.1.0.1/16, dhcp: {range: [10.1.0.10, 10.1.0.20]}}}
---
kind: Network
metadata: {name: b}
spec: {ipv4: {address: 10.1.5.1/24}}
---
kind: Network
metadata: {name: a}
spec: {forward: isolated}
""")
    assert any(f.startswith("m.yaml:11: spec.ipv4.address: 10.1.5.0/24 overlaps 10.1.0.0/16") for f in found)
    assert any(f.startswith("m.yaml:14: metadata.name: duplicate Network 'a'") for f in found)


def test_dhcp_range_outside_subnet_and_reversed(tmp_path):
    found = problems(tmp_path, """\
kind: Network
metadata: {name: a}
spec: {ipv4: {address: 10.1.0.1/24, dhcp: {range: [10.1.0.50, 10.2.0.20]}}}
---
kind: Network
metadata: {name: b}
spec: {ipv4: {address: 10.3.0.1/24, dhcp: {range: [10.3.0.50, 10.3.0.20]}}}
""")
    assert "m.yaml:7: spec.ipv4: dhcp.range 10.1.0.50-10.2.0.20 is not inside 10.1.0.0/24" in found
    assert "m.yaml:11: spec.ipv4: dhcp.range starts after it ends (10.3.0.50 > 10.3.0.20)" in found


def test_host_must_be_named_when_several(tmp_path):
    text = HOST.replace("local", "other") + "kind: Network\nmetadata: {name: a}\nspec: {forward: isolated}\n"
    path = write(tmp_path, "m.yaml", HOST + text)
    with pytest.raises(ManifestError) as exc:
        pipeline.load([path])
    assert "metadata.host: several Hosts are declared" in str(exc.value)


def test_errors_of_all_files_are_collected(tmp_path):
    write(tmp_path, "a.yaml", "kind: [\n")
    write(tmp_path, "b.yaml", HOST + "kind: Network\nmetadata: {name: x}\nspec: {forward: warp}\n")
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    files = {d.file.rsplit("/", 1)[-1] for d in exc.value.diagnostics}
    assert files == {"a.yaml", "b.yaml"}


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_bad_input_exits_1_without_touching_libvirt(tmp_path, command):
    """The CLI stops at validation: libvirt is never even imported."""
    path = write(tmp_path, "m.yaml", HOST + "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 0, memory: 1MiB}\n")
    probe = ("import sys\nfrom reconciler.cli import app\n"
             f"try:\n    app([{command!r}, {str(path)!r}])\n"
             "except SystemExit as e:\n    print('exit', e.code, 'libvirt' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "exit 1 False"
    assert "m.yaml:7: spec.vcpus.max" in out.stderr


def test_preflight_asks_for_swtpm_and_uefi_descriptors_of_a_guest_that_will_start(monkeypatch, tmp_path):
    """hostcheck on a local host: a shut-off guest with an emulated TPM and firmware='efi' that the
    manifest wants running needs swtpm and firmware descriptors (here: absent)."""
    from reconciler import hostcheck
    from reconciler.live import HostFacts, HostState, LiveObject
    from reconciler.manifest import build
    from reconciler.loader import SourceDoc
    docs = [SourceDoc("h.yaml", 1, {"kind": "Host", "metadata": {"name": "local"}, "spec": {"uri": "qemu:///system"}}),
            SourceDoc("g.yaml", 1, {"kind": "Guest", "metadata": {"name": "g"},
                                    "spec": {"vcpus": 1, "memory": "64MiB"}})]
    manifest = build(docs)
    xml = ("<domain type='kvm'><name>g</name><memory>65536</memory><vcpu>1</vcpu>"
           "<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type></os>"
           "<devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices></domain>")
    state = HostState("local", "qemu:///system", HostFacts({"kvm"}),
                      {("Guest", "g"): LiveObject("Guest", "g", xml, False)})
    monkeypatch.setattr(hostcheck.shutil, "which", lambda name: None)
    monkeypatch.setattr(hostcheck, "FIRMWARE_DESCRIPTORS", (tmp_path / "none",))
    found = [str(d) for d in hostcheck.problems(list(manifest.items.values()), state)]
    assert any("needs swtpm" in d and "spec.state" in d for d in found), found
    assert any("no firmware descriptors" in d for d in found), found
    monkeypatch.setattr(hostcheck.shutil, "which", lambda name: "/usr/bin/swtpm")
    monkeypatch.setattr(hostcheck, "FIRMWARE_DESCRIPTORS", (tmp_path,))
    (tmp_path / "60-edk2.json").write_text("{}")
    assert not [str(d) for d in hostcheck.problems(list(manifest.items.values()), state)]


def test_long_free_text_values_are_limited_by_length_with_their_characters_checked(tmp_path):
    """The limits are max_length (a bounded regex repetition would cost 38 ms to compile per run)."""
    pool = "kind: StoragePool\nmetadata: {{name: p}}\nspec: {{type: netfs, path: /mnt/p, source: " \
           "{{host: nfs1, dir: {dir}}}}}\n"
    assert not problems_or_none(tmp_path, pool.format(dir="/" + "d" * 4095))
    found = problems(tmp_path, pool.format(dir="/" + "d" * 4096))
    assert len(found) == 1 and "spec.source.dir" in found[0] and "at most 4096 characters" in found[0], found
    found = problems(tmp_path, pool.format(dir='"/a<b"'))
    assert len(found) == 1 and "spec.source.dir" in found[0] and "should match pattern" in found[0], found


def problems_or_none(tmp_path, text: str) -> list[str]:
    try:
        pipeline.load([write(tmp_path, "m.yaml", HOST + text)])
    except ManifestError as exc:
        return [str(d) for d in exc.diagnostics]
    return []
