"""Fuzzing the loader and validator with hypothesis: whatever the bytes, `validate` ends in a
Manifest or in ManifestError whose every problem names the file and a line; never in another
exception. (bench/fuzz_manifests.py runs the same mutations far longer, in child processes,
and counts crashes, hangs and memory.)"""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from reconciler import pipeline
from reconciler.errors import ManifestError

from tests.helpers import REPO

SEEDS = [p.read_bytes() for p in sorted((REPO / "examples" / "quickstart").glob("*.yaml"))
         + sorted((REPO / "tests" / "data" / "manifests").rglob("*.yaml"))]
HOST = b'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system"}\n---\n'

# Pieces that broke parsers and validators before: anchors and aliases, tags, nesting, control
# and non-XML characters, huge numbers, encodings, directives, merge keys, hostile values.
TOKENS = [b"&a ", b"*a", b"&b [*a, *a, *a, *a]", b"!!str ", b"!!bool ", b"!!float ", b"!!int ", b"!!binary ",
          b"!!python/object:os.system ", b"!x ", b"!!set ", b"!!timestamp ", b"[", b"]", b"{", b"}", b": ",
          b"- ", b"---\n", b"...\n", b"\t", b"\x00", b"\x01", b"\x7f", b"\xef\xbb\xbf", b"\xff\xfe",
          "\u2028".encode(), b"\xed\xa0\x80", b"\xc3", b"'", b'"', b"\\", b"\\x01", b'"\\ud800"',
          b"9" * 5000, b"1e999", b"-0", b".nan", b"<<: *a\n", b"? ", b"%YAML 1.1\n", b"%TAG !e! tag:e,2002:\n",
          b"&a [*a]", b"[" * 200, b"{a: " * 100, b"\n" + b"  " * 80 + b"k: v", b"qemu+ext:///system?command=/bin/sh",
          b"a'b", b"a,ignore", b"/x/../y", b"..", b"0", b"-1", b"fe80::1%eth0", b"\r\n", b"\r", b"#", b"|\n  x",
          b">-\n  x", b"~", b"null", b"true", b"0x1F", b"0o17", b"1_000", b"52:54:00:00:00:01"]


@st.composite
def mutated(draw) -> bytes:
    doc = bytearray(HOST + draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(doc)))
        op = draw(st.sampled_from(["insert", "delete", "flip", "repeat"]))
        if op == "insert":
            doc[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del doc[pos:pos + draw(st.integers(1, 40))]
        elif op == "flip" and pos < len(doc):
            doc[pos] = draw(st.integers(0, 255))
        elif op == "repeat":
            doc[pos:pos] = bytes(doc[pos:pos + draw(st.integers(1, 60))]) * draw(st.integers(2, 20))
    return bytes(doc)


def _check(tmp: Path, raw: bytes) -> None:
    path = tmp / "fuzz.yaml"
    path.write_bytes(raw)
    try:
        pipeline.load([path])
    except ManifestError as exc:
        assert exc.diagnostics
        for diag in exc.diagnostics:
            assert diag.file == str(path) and diag.line is not None and diag.message, diag


FUZZ = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@FUZZ
@given(raw=mutated())
def test_mutated_manifests_end_in_a_manifest_or_located_errors(tmp_path_factory, raw):
    _check(tmp_path_factory.mktemp("fuzz"), raw)


@settings(FUZZ, max_examples=300)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_random_text_ends_in_a_manifest_or_located_errors(tmp_path_factory, text):
    _check(tmp_path_factory.mktemp("fuzz"), HOST + text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=200)
@given(raw=st.binary(max_size=300))
def test_random_bytes_end_in_located_errors(tmp_path_factory, raw):
    _check(tmp_path_factory.mktemp("fuzz"), raw)
