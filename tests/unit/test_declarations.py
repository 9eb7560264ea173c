"""Meta test of the element declarations (fields.py): every declared field is used by the 'wide'
manifests, is a field of the manifest schema, and round-trips: render -> read -> edit another
definition in place -> read gives the same values (and nothing else of that definition changes)."""
from __future__ import annotations

from reconciler import desired, edit, fields, pipeline, schema
from reconciler.diff import diff
from reconciler.live import HostFacts, HostState
from reconciler.planners import _edit
from tests.helpers import DATA, recorded

BASES = {"Guest": "guest-inactive.xml", "Network": "network-inactive.xml", "StoragePool": "pool-inactive.xml"}


def declared(table: dict, prefix: str = "") -> list[str]:
    out = []
    for name, spec in table.items():
        if isinstance(spec, dict):
            out += declared(spec, f"{prefix}{name}.")
        elif isinstance(spec, fields.Items):
            out += declared(spec.table, f"{prefix}{name}.*.")
        else:
            out.append(prefix + name)
    return out


def wide() -> dict:
    manifest = pipeline.load([DATA / "manifests" / "wide"])
    state = HostState("local", "qemu:///system", HostFacts({"kvm", "qemu"}))
    return {item.ref: desired.build(item, manifest, state) for item in manifest.items.values()}


def _values(values: dict, path: list[str]) -> list:
    if not path:
        return [values]
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for item in values.values() for v in _values(item, rest)]
    return _values(values[head], rest) if isinstance(values, dict) and head in values else []


def _schema_has(node: dict, path: list[str], defs: dict) -> bool:
    while "$ref" in node or "anyOf" in node:
        if "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        else:
            node = next((n for n in node["anyOf"] if "$ref" in n or n.get("type") in ("object", "array")), node["anyOf"][0])
    if not path:
        return True
    head = path[0]
    if head == "*":
        return node.get("type") == "array" and _schema_has(node["items"], path[1:], defs)
    if node.get("type") == "array":            # a fixed pair, e.g. dhcp.range [start, end]
        return False
    props = node.get("properties", {})
    return head in props and _schema_has(props[head], path[1:], defs)


def test_every_declared_field_is_in_the_wide_manifests_and_the_schema():
    docs = wide()
    doc_schema = schema.manifest_schema()
    defs = doc_schema["$defs"]
    for kind, table in fields.TABLES.items():
        objects = [d.fields for ref, d in docs.items() if ref.kind == kind]
        spec_def = defs[f"{kind}Spec"]
        for path in declared(table):
            found = [v for f in objects for v in _values(f, path.split("."))]
            assert any(v not in (None, "", -1) for v in found), f"{kind}.{path} is not used by wide/"
            if getattr(fields.declaration(kind, path.replace("*", "x").split(".")), "derived", False):
                continue        # derived from another object (a disk's LUKS secret: its volume's)
            where = fields.manifest_path(kind, path.split("."), {}).replace("[*]", ".*")
            manifest_path = where.split(".")
            assert _schema_has(spec_def, manifest_path, defs) or manifest_path[-1] == "range", \
                f"{kind}.{path}: no spec.{where} in the schema"


def test_every_declaration_round_trips_by_editing_another_definition():
    """render -> read gives V; editing a recorded definition with diff(V, it) gives V back, and what
    the edits do not name (UUID, addresses, controllers...) is the same as before."""
    for ref, want in wide().items():
        if ref.kind not in BASES:
            continue
        base = recorded(BASES[ref.kind])
        changes = diff(want.fields, fields.read(ref.kind, base))
        assert changes, ref
        op = _edit(want, changes, marker=ref.kind != "StoragePool")
        edited = edit.apply(ref.kind, base, [edit.Edit.from_json(e) for e in op.args["edits"]],
                            op.args["marker"])
        assert diff(want.fields, fields.read(ref.kind, edited)) == [], ref
        assert fields.uuid_of(edited) == fields.uuid_of(base)
        again = edit.apply(ref.kind, edited, [edit.Edit.from_json(e) for e in op.args["edits"]])
        assert fields.read(ref.kind, again) == fields.read(ref.kind, edited), f"{ref}: edits are not idempotent"


def test_readme_field_reference_is_generated_from_the_declarations():
    """README's field reference is reference.markdown(): a declaration added or changed without
    regenerating it fails here."""
    from reconciler import reference
    from tests.helpers import REPO
    text = (REPO / "README.md").read_text()
    assert reference.with_reference(text) == text, "run: python -m reconciler.reference README.md"
    for kind, table in fields.TABLES.items():      # a row per declared field, and one per item key
        keys = [s for s in table.values() if isinstance(s, fields.Items)]
        assert len(reference.rows(kind)) == len(declared(table)) + len(keys), kind


def test_a_field_of_a_group_inside_an_item_is_edited_in_place():
    """A NIC moved from a network to macvtap: `direct.dev` and `direct.mode` live in a group of
    the item's table (edit.py walks into it), the MAC and the rest of the NIC stay."""
    base = recorded("guest-inactive.xml")
    have = fields.read("Guest", base)
    mac = next(iter(have["interfaces"]))
    want = {"interfaces": {mac: {"direct": {"dev": "eth0", "mode": "vepa"}}}}
    changes = diff(want, have)
    assert [c.path for c in changes] == [f"interfaces.{mac}.direct.dev", f"interfaces.{mac}.direct.mode"]
    edited = edit.apply("Guest", base, [edit.Edit(tuple(c.parts), c.after) for c in changes])
    nic = fields.read("Guest", edited)["interfaces"][mac]
    assert nic["direct"] == {"dev": "eth0", "mode": "vepa"} and nic["network"] is None
    assert nic["model"] == have["interfaces"][mac]["model"]


def test_every_field_without_a_writer_has_a_path_the_default_writer_can_edit():
    """A field written by its path (no `write=`) must name a simple path (xmlpath): else its
    first edit in place would fail at apply, not here."""
    from reconciler import xmlpath

    def walk(table, prefix=""):
        for name, spec in table.items():
            if isinstance(spec, dict):
                yield from walk(spec, f"{prefix}{name}.")
            elif isinstance(spec, fields.Items):
                yield from walk(spec.table, f"{prefix}{name}.*.")
            elif isinstance(spec, fields.F) and spec.write is None:
                yield prefix + name, spec.xpath

    for kind, table in fields.TABLES.items():
        for name, path in walk(table):
            segments, _ = xmlpath.split(path)
            for segment in segments:
                try:
                    xmlpath._parse(segment)
                except ValueError:
                    raise AssertionError(f"{kind}.{name}: {path!r} needs a writer") from None
