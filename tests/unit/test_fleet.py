"""Fleets (expand.py): classes merged field by field, sets expanded per index, errors at the line
of the class, the set's template or the guest, in its own file."""
from __future__ import annotations

import pytest

from reconciler import pipeline
from reconciler.errors import ManifestError
from tests.helpers import write

HOST = """\
kind: Host
metadata: {name: local}
spec: {uri: "qemu:///system"}
---
kind: Network
metadata: {name: lan}
spec: {forward: nat, ipv4: {address: 10.9.0.1/24}}
"""

CLASS = """\
kind: GuestClass
metadata: {name: small}
spec:
  vcpus: {max: 2, current: 1}
  memory: {max: 1GiB, current: 512MiB}
  machine: q35
  graphics: {type: vnc}
  interfaces: [{network: lan}]
"""


def _guest(own: str) -> str:
    """The manifests with a Guest `db` of class small and its own `own` spec lines."""
    return HOST + "---\nkind: Guest\nmetadata: {name: db}\nspec:\n  class: small\n" + own


def test_a_guest_overrides_its_class_field_by_field(tmp_path):
    write(tmp_path, "class.yaml", CLASS)
    write(tmp_path, "m.yaml", _guest("  memory: {max: 2GiB}\n  disks: [{path: /srv/db.img}]\n"))
    manifest = pipeline.load([tmp_path])
    spec = next(i for i in manifest.items.values() if i.ref.kind == "Guest").spec
    assert spec.memory.max == 2 * 1024**3 and spec.memory.current == 512 * 1024**2   # merged key by key
    assert spec.vcpus.max == 2 and spec.graphics is not None and spec.interfaces[0].network == "lan"
    assert [d.path for d in spec.disks] == ["/srv/db.img"]


def test_errors_point_at_the_class_or_the_guest_in_their_own_files(tmp_path):
    write(tmp_path, "class.yaml", CLASS.replace("machine: q35", "machine: isapc"))
    write(tmp_path, "m.yaml", _guest("  vcpus: {max: 0}\n"))
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    text = str(exc.value)
    assert f"{tmp_path}/class.yaml:6: spec.machine:" in text, text
    assert f"{tmp_path}/m.yaml:13: spec.vcpus.max:" in text, text


def test_an_unknown_class_and_unknown_class_fields_are_errors(tmp_path):
    write(tmp_path, "class.yaml", CLASS.replace("machine: q35", "machin: q35"))
    write(tmp_path, "m.yaml", HOST + "---\nkind: Guest\nmetadata: {name: db}\nspec: {class: big, vcpus: 1, memory: 64MiB}\n")
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    text = str(exc.value)
    assert f"{tmp_path}/class.yaml:6: spec.machin: 'machin' is not a Guest field" in text, text
    assert "m.yaml:11: spec.class: no GuestClass 'big' (small)" in text, text


SET = """\
---
kind: GuestSet
metadata: {name: web, labels: {tier: web}}
spec:
  count: 3
  start: 1
  template:
    class: small
    interfaces:
      - {network: lan, mac: "52:54:00:10:00:{{ '%02x' % index }}", ip: "10.9.0.{{ 10 + index }}"}
"""


def test_a_set_declares_guests_with_per_index_values_and_leases(tmp_path):
    write(tmp_path, "class.yaml", CLASS)
    write(tmp_path, "m.yaml", HOST + SET)
    manifest = pipeline.load([tmp_path])
    guests = sorted((i for i in manifest.items.values() if i.ref.kind == "Guest"), key=lambda i: i.ref.name)
    assert [g.ref.name for g in guests] == ["web-1", "web-2", "web-3"]
    assert [g.spec.interfaces[0].mac for g in guests] == ["52:54:00:10:00:01", "52:54:00:10:00:02", "52:54:00:10:00:03"]
    assert guests[0].doc.metadata.labels == {"tier": "web", "guestset": "web"}
    lan = next(i for i in manifest.items.values() if i.ref.kind == "Network")
    hosts = [(h.mac, str(h.ip), h.name) for h in lan.spec.ipv4.dhcp.hosts]
    assert hosts == [("52:54:00:10:00:01", "10.9.0.11", "web-1"), ("52:54:00:10:00:02", "10.9.0.12", "web-2"),
                     ("52:54:00:10:00:03", "10.9.0.13", "web-3")]


def test_set_errors_name_the_template_line(tmp_path):
    write(tmp_path, "class.yaml", CLASS)
    write(tmp_path, "m.yaml", HOST + SET.replace("10.9.0.{{ 10 + index }}", "10.8.0.{{ 10 + index }}")
          .replace("count: 3", "count: 2"))
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    text = str(exc.value)
    line = HOST.count("\n") + SET.count("\n")            # the interfaces item is the set's last line
    assert f"m.yaml:{line}: spec.interfaces.0.ip: 10.8.0.11 is not inside 10.9.0.0/24 of Network 'lan'" in text, text
    write(tmp_path, "m.yaml", HOST + SET.replace("'%02x' % index", "index.nope"))
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    assert f"m.yaml:{line}: spec.template.interfaces.0.mac: cannot render" in str(exc.value), str(exc.value)


def test_set_templates_run_in_a_sandbox(tmp_path):
    write(tmp_path, "class.yaml", CLASS)
    write(tmp_path, "m.yaml", HOST + SET.replace("'%02x' % index", "index.__class__.__mro__[1].__subclasses__()"))
    with pytest.raises(ManifestError) as exc:
        pipeline.load([tmp_path])
    assert "cannot render" in str(exc.value)
