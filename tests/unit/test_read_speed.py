"""fields.read walks a table's paths once and evaluates only the fields that can match: it must
read exactly what evaluating every declared XPath does (the reference below, the reader as it was),
on every XML document of the tests, on every rendered example, and on each of them with one
element removed or emptied."""
from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from reconciler import desired, fields, pipeline
from reconciler.live import HostFacts, HostState
from tests.helpers import DATA, REPO

KINDS = {"domain": "Guest", "network": "Network", "pool": "StoragePool", "volume": "Volume",
         "secret": "Secret", "bridge": "Bridge"}
MANIFESTS = [p for p in sorted((REPO / "examples").iterdir())       # the examples that hold manifests
             if any("\nkind: " in f"\n{f.read_text()}" for f in p.rglob("*.yaml"))] + \
    [DATA / "manifests" / "recorded", DATA / "manifests" / "wide"]


def reference_table(table: dict, node) -> dict:
    """Every field's XPath evaluated below `node` (fields._read before the walk)."""
    out: dict[str, Any] = {}
    for name, spec in table.items():
        if isinstance(spec, dict):
            out[name] = reference_table(spec, node)
        elif isinstance(spec, fields.F):
            found = fields.xp(spec.xpath)(node)
            out[name] = spec.conv(found[0]) if found else spec.default
        elif isinstance(spec, fields.L):
            out[name] = [spec.conv(n) for n in fields.xp(spec.xpath)(node)]
        else:
            key = fields.xp(spec.key)
            out[name] = {spec.key_conv(found[0]): reference_table(spec.table, el)
                         for el in fields.xp(spec.xpath)(node) for found in [key(el)] if found}
    return out


def reference(kind: str, xml) -> dict:
    values = reference_table(fields.TABLES[kind], fields.parse(xml))
    if kind == "Guest":
        if values["vcpus"]["current"] is None:
            values["vcpus"]["current"] = values["vcpus"]["max"]
        if values["memory"]["current"] is None:
            values["memory"]["current"] = values["memory"]["max"]
    return values


def typed(value):
    """`value` with the type of every part and the order of every mapping."""
    if isinstance(value, dict):
        return "dict", [(k, typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return "list", [typed(v) for v in value]
    return type(value), value


def outcome(read, kind: str, xml):
    try:
        return typed(read(kind, xml))
    except Exception as exc:        # the same error, or none, from both readers
        return "error", type(exc), str(exc)


def assert_same(kind: str, xml) -> None:
    root = fields.parse(xml)
    assert outcome(fields.read, kind, root) == outcome(reference, kind, root), etree.tostring(root)


def documents() -> list[tuple[str, str, str]]:
    """(name, kind, XML) of every XML file below tests/ and every rendered manifest."""
    out = []
    for path in sorted((REPO / "tests").rglob("*.xml")):
        xml = path.read_text(encoding="utf-8")
        out.append((str(path.relative_to(REPO / "tests")), KINDS[fields.parse(xml).tag], xml))
    state = HostState("local", "qemu:///system", HostFacts({"kvm", "qemu"}))
    for path in MANIFESTS:
        manifest = pipeline.load([path])
        for item in manifest.items.values():
            out.append((f"{path.name}:{item.ref}", item.ref.kind, desired.build(item, manifest, state).xml))
    return out


DOCUMENTS = documents()


def test_every_document_is_found():
    kinds = {kind for _, kind, _ in DOCUMENTS}
    assert kinds == set(fields.TABLES) and len(DOCUMENTS) > 80, kinds


@pytest.mark.parametrize("name, kind, xml", DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_same_as_every_xpath(name, kind, xml):
    for other in fields.TABLES:          # its own kind, and every other kind's table on it
        assert_same(other, xml)


@pytest.mark.parametrize("name, kind, xml", DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_same_with_any_element_removed_or_emptied(name, kind, xml):
    count = sum(1 for _ in fields.parse(xml).iter()) - 1
    for i in range(count):
        for change in ("remove", "empty"):
            root = fields.parse(xml)
            el = list(root.iter())[i + 1]
            if change == "remove":
                el.getparent().remove(el)
            else:
                el.clear()
            assert_same(kind, root)


@pytest.mark.parametrize("xml", [
    "<domain/>",
    "<network/>",
    "<domain><cpu/><os/><devices/><features><hyperv/></features><memoryBacking/><cputune/></domain>",
    "<domain><devices><disk type='file'/><interface type='network'/><tpm/><hostdev mode='subsystem'/>"
    "</devices></domain>",
    "<domain><cpu mode='a'/><cpu mode='b'><topology sockets='2'/></cpu><os/><os><boot dev='hd'/></os>"
    "<devices/><devices><video><model type='vga'/></video></devices></domain>",
    "<domain xmlns='urn:x'><cpu mode='a'/><vcpu>2</vcpu></domain>",
    "<domain xmlns:x='urn:x'><x:cpu mode='a'/><cpu x:mode='b'/><x:vcpu>2</x:vcpu></domain>",
    "<domain><!-- c --><?pi x?><vcpu current='1'>2<!-- c --></vcpu><cpu><!-- c --><model>m</model></cpu></domain>",
    "<!DOCTYPE domain [<!ATTLIST cpu mode CDATA 'host-model'><!ATTLIST domain type CDATA 'kvm'>]>"
    "<domain><cpu><model>m</model></cpu></domain>",
    "<!DOCTYPE domain [<!ENTITY e '<cpu mode=\"x\"/><acpi/>'>]><domain>&e;<features>&e;</features></domain>",
    "<network><ip address='10.0.0.1' prefix='24'/><ip family='ipv6' address='fd00::1'/><dns><host ip='10.0.0.2'>"
    "<hostname>a</hostname></host></dns><route address='10.1.0.0' prefix='16' gateway='10.0.0.9'/></network>",
    "<domain><vcpu>x</vcpu><iothreads>y</iothreads><devices><disk type='file'><target dev='vda'/>"
    "<driver iothread='z'/></disk></devices></domain>",
    "<pool type='dir'><target><path>/a/../b</path><permissions/></target><source/></pool>",
], ids=lambda xml: xml[:40])
def test_same_on_edge_cases(xml):
    for kind in fields.TABLES:
        assert_same(kind, xml)


def test_defaults_are_the_declared_objects_and_containers_are_new():
    first, second = fields.read("Network", "<network/>"), fields.read("Network", "<network/>")
    assert first["dns_forwarders"] is fields.TABLES["Network"]["dns_forwarders"].default
    assert first["interfaces"] == [] and first["interfaces"] is not second["interfaces"]
    assert first["dns_hosts"] == {} and first["dns_hosts"] is not second["dns_hosts"]
    assert first["nat"] is not second["nat"]


@pytest.mark.parametrize("path, steps", [
    ("a/b[@c='/|[']/@d", [["a", "b", "@d"]]),
    (".", [[]]),
    ("self::*[@t='x']/source/@dev", [["source", "@dev"]]),
    ("@x | y[1] /z", [["@x"], ["y", "z"]]),
    ("self::host[hostname]", [["self::host"]]),
])
def test_skeleton(path, steps):
    assert fields._skeleton(path) == steps


@pytest.mark.parametrize("path", ["a[x]b", "/a", "a//b", "a/..", "count(a)", "string(@b)", "@a/b", "child::a",
                                  "a/*", "x:a", "-a", "$v/a", "a[1", "a/text()"])
def test_skeleton_refuses_what_it_cannot_walk(path):
    assert fields._skeleton(path) is None
