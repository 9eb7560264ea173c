"""Rendering: golden XML, libvirt's RNG schemas, escaping, and libvirt's own parser (test driver)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from reconciler import desired, pipeline, rng
from reconciler.live import HostFacts, HostState
from tests.helpers import DATA, REPO, write

GOLDEN = DATA / "golden"
KIND_SCHEMA = {"Secret": "secret", "Guest": "domain", "Network": "network", "StoragePool": "storagepool", "Volume": "storagevol"}


def rendered(paths, domain_types=("kvm", "qemu")):
    manifest = pipeline.load(paths)
    state = HostState("local", "qemu:///system", HostFacts(set(domain_types)))
    return {item.ref: desired.build(item, manifest, state) for item in manifest.items.values()}


def golden_cases():
    return [REPO / "examples" / "quickstart", DATA / "manifests" / "recorded", DATA / "manifests" / "wide"]


@pytest.mark.parametrize("path", golden_cases(), ids=lambda p: p.name)
def test_golden_xml(path, update_golden):
    for ref, want in rendered([path]).items():
        golden = GOLDEN / path.name / f"{ref.kind}-{ref.name.replace('/', '_')}.xml"
        if update_golden or not golden.exists():
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(want.xml, encoding="utf-8")
        assert want.xml == golden.read_text(encoding="utf-8"), f"{golden} differs (--update-golden)"


@pytest.mark.parametrize("path", golden_cases(), ids=lambda p: p.name)
def test_every_rendered_document_passes_libvirt_schemas(path, tmp_path):
    """lxml RelaxNG in-process, and virt-xml-validate (xmllint) as a second opinion."""
    assert shutil.which("virt-xml-validate"), "virt-xml-validate missing: run scripts/setup.sh"
    for ref, want in rendered([path]).items():
        if ref.kind not in KIND_SCHEMA:
            continue            # a host bridge is no libvirt object: no schema
        assert rng.errors(ref.kind, want.xml) == [], ref
        file = tmp_path / "doc.xml"
        file.write_text(want.xml)
        done = subprocess.run(["virt-xml-validate", str(file), KIND_SCHEMA[ref.kind]], capture_output=True, text=True)
        assert done.returncode == 0, (ref, done.stdout, done.stderr)
        for part in want.parts.values():   # hot-plug snippets stand alone too
            assert part.strip().startswith("<")


def test_domain_type_follows_host_capabilities():
    path = REPO / "examples" / "quickstart"
    kvm = [d for d in rendered([path]).values() if d.ref.kind == "Guest"][0]
    tcg = [d for d in rendered([path], ("qemu",)).values() if d.ref.kind == "Guest"][0]
    assert '<domain type="kvm">' in kvm.xml and '<domain type="qemu">' in tcg.xml
    assert "type" not in kvm.fields   # derived from the host, so never a diff


def test_strings_cannot_inject_xml(tmp_path):
    path = write(tmp_path, "m.yaml", """\
        kind: Host
        metadata: {name: local}
        spec: {uri: "qemu:///system"}
        ---
        kind: Network
        metadata: {name: n}
        spec:
          forward: isolated
          ipv4: {address: 10.9.0.1/24, dhcp: {hosts: [{mac: "52:54:00:00:00:01", ip: 10.9.0.5, name: "a-b.example"}]}}
        ---
        kind: Guest
        metadata: {name: g}
        spec:
          vcpus: 1
          memory: 64MiB
          disks: [{device: cdrom, path: "/srv/a&b<c>.iso"}]
        """)
    docs = rendered([path])
    for ref, want in docs.items():
        assert rng.errors(ref.kind, want.xml) == []
        assert "<evil" not in want.xml
    guest = next(d for d in docs.values() if d.ref.kind == "Guest")
    assert guest.fields["disks"]["sda"]["path"] == "/srv/a&b<c>.iso"
    net = next(d for d in docs.values() if d.ref.kind == "Network")
    assert net.fields["dhcp_hosts"]["52:54:00:00:00:01"]["name"] == "a-b.example"


def test_test_driver_accepts_every_rendered_document():
    """libvirt's own parser (test:///default) takes what we render, with VALIDATE."""
    import libvirt
    conn = libvirt.open("test:///default")
    try:
        docs = rendered([REPO / "examples" / "quickstart"])
        for want in docs.values():
            if want.ref.kind == "Network":
                conn.networkDefineXMLFlags(want.xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE).undefine()
            elif want.ref.kind == "StoragePool":
                conn.storagePoolDefineXML(want.xml, libvirt.VIR_STORAGE_POOL_DEFINE_VALIDATE).undefine()
            elif want.ref.kind == "Guest":
                dom = conn.defineXMLFlags(want.xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
                assert dom.UUIDString() in want.xml   # our identity, not one libvirt invented
                dom.undefine()
    finally:
        conn.close()


def test_compiled_templates_are_kept_between_runs(tmp_path):
    """A run keeps the templates it compiled in the user's cache (XDG_CACHE_HOME), so the next one
    does not compile them again; a cache that cannot be written is no error."""
    import os
    import sys
    code = "from reconciler.render import render; print(len(render('volume.xml.j2', v={'name': 'a', 'capacity': 1, 'format': 'raw', 'backing': None, 'allocation': 0, 'permissions': None, 'secret_uuid': None})))"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).returncode == 0
    assert list((tmp_path / "cache" / "virt-reconcile" / "jinja2").glob("__jinja2_*.cache"))
    env["XDG_CACHE_HOME"] = "/proc/no-such-place"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
