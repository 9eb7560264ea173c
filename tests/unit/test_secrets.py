"""Sensitive values by reference (secretref): errors at the manifest's line, tokens in place of
values, keyed hashes in compared values, and only an attribute's whole value revealed."""
from __future__ import annotations

import pytest

from reconciler import desired, fields, pipeline, secretref
from reconciler.errors import ManifestError
from reconciler.manifest import Ref
from tests.unit.test_hostile_input import HOST

GUEST = "kind: Guest\nmetadata: {name: g}\nspec:\n  vcpus: 1\n  memory: 64MiB\n  graphics: {type: spice, password: PASSWORD}\n"


def _load(tmp_path, password: str):
    path = tmp_path / "m.yaml"
    path.write_text(HOST + GUEST.replace("PASSWORD", password))
    return pipeline.load([path])


def _errors(tmp_path, password: str) -> list[str]:
    with pytest.raises(ManifestError) as exc:
        _load(tmp_path, password)
    return [str(d).replace(str(tmp_path) + "/", "") for d in exc.value.diagnostics]


@pytest.mark.parametrize("password,message", [
    ("s3cret", "a password is never written in a manifest"),
    ("{env: VRT_UNSET_VARIABLE}", "the environment variable VRT_UNSET_VARIABLE is not set"),
    ("{file: missing.pass}", "cannot read the secret file"),
    ("{env: A, file: b}", "exactly one of env or file"),
])
def test_bad_references_are_errors_at_their_line(tmp_path, password, message):
    found = _errors(tmp_path, password)
    assert any(f.startswith("m.yaml:10: spec.graphics.password") and message in f for f in found), found


def test_a_file_reference_is_relative_to_the_manifest_and_never_rendered(tmp_path, monkeypatch):
    (tmp_path / "spice.pass").write_text('p"w<&\n')
    monkeypatch.chdir("/")
    manifest = _load(tmp_path, "{file: spice.pass}")
    item = manifest.items[Ref("local", "Guest", "g")]
    assert item.spec.graphics.password.file == str(tmp_path / "spice.pass")
    want = desired.build(item, manifest, pipeline.HostState("local", "qemu:///system"))
    assert 'p"w<&' not in want.xml and "p&quot;w" not in want.xml
    revealed = secretref.reveal(want.xml)
    assert fields.parse(revealed).find("devices/graphics").get("passwd") == 'p"w<&'   # the last newline dropped
    live = fields.read("Guest", revealed)["graphics"]["spice"]["password"]
    assert live == want.fields["graphics"]["spice"]["password"]        # the same value, the same hash
    assert 'p"w' not in secretref.stable(want.fields)["graphics"]["spice"]["password"]


def test_only_a_whole_attribute_value_is_revealed(monkeypatch):
    monkeypatch.setenv("VRT_PW", "hunter2")
    token = secretref.token("env", "VRT_PW")
    xml = f'<g passwd="{token}"><desc>{token}</desc><x a="({token})"/></g>'
    assert secretref.reveal(xml) == f'<g passwd="hunter2"><desc>{token}</desc><x a="({token})"/></g>'


def test_hashes_compare_values_and_records_keep_references(monkeypatch):
    monkeypatch.setenv("VRT_PW", "hunter2")
    token = secretref.token("env", "VRT_PW")
    wanted, same, other = secretref.digest(token), secretref.digest("hunter2"), secretref.digest("hunter3")
    assert wanted == same and wanted != other and "hunter2" not in wanted
    recorded = secretref.stable({"g": {"password": wanted}})
    assert recorded == {"g": {"password": "(sensitive env VRT_PW)"}}
    # drift: the record names the reference the manifest still names -> the desired value is what was applied
    assert secretref.as_applied(recorded, {"g": {"password": wanted}}, {"g": {"password": other}}) == \
        {"g": {"password": wanted}}
    # another reference: what was applied is not known, the live value is taken (no drift)
    assert secretref.as_applied({"g": {"password": "(sensitive env OLD)"}}, {"g": {"password": wanted}},
                                {"g": {"password": other}}) == {"g": {"password": other}}
