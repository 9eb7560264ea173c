"""Hostile manifests: every one is refused at validate with file, line and field; none runs a
program, ends in a traceback, or reaches a host's configuration changed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler import pipeline, uris
from reconciler.errors import ManifestError

from tests.helpers import write

HOST = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system"}\n---\n'


def diagnostics(tmp_path, text: str | bytes, name: str = "m.yaml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ManifestError) as exc:
        pipeline.load([path])
    return [str(d).replace(str(tmp_path) + "/", "") for d in exc.value.diagnostics]


# --- YAML that used to end in a traceback, a hang or unbounded memory ---------------------------

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))

BAD_YAML = [
    ("control character in the text", "kind: Host\x01\n", "m.yaml:1: character U+0001 is not allowed in YAML text"),
    ("recursive alias", "a: &x [1, *x]\n", "m.yaml:1: a.1: alias *x refers to a node that contains it"),
    ("alias without anchor", "a: 1\nb: *nope\n", "m.yaml:2: b: alias *nope has no anchor &nope before it"),
    ("deep flow nesting", "a: " + "[" * 50000 + "]" * 50000 + "\n", "nested deeper than 64 levels"),
    ("deep block nesting", "".join("  " * i + "k:\n" for i in range(100)), "nested deeper than 64 levels"),
    ("billion laughs", LAUGHS, "aliases are expanded"),
    ("a document that is a tagged empty string", "--- !!str\n", "m.yaml:1: a document must be a mapping"),
    ("!!bool maybe", "a: !!bool maybe\n", "m.yaml:1: a: 'maybe' is not a valid !!bool"),
    ("!!float x", 'a: !!float "x"\n', "m.yaml:1: a: 'x' is not a valid !!float"),
    ("!!int 1.5", "a: !!int 1.5\n", "m.yaml:1: a: '1.5' is not a valid !!int"),
    ("python tag", "a: !!python/object/apply:os.system [id]\n", "YAML tag tag:yaml.org,2002:python/object"),
    ("local tag", "kind: !Host Host\n", "m.yaml:1: kind: YAML tag !Host is not allowed"),
    ("binary tag", "a: !!binary aGk=\n", "YAML tag tag:yaml.org,2002:binary is not allowed"),
    ("integer over 4300 digits", "a: " + "9" * 5000 + "\n", "m.yaml:1: a: the number has 5000 digits"),
    ("mapping as a key", "? {a: 1}\n: 2\n", "m.yaml:1: a mapping key must be a plain value"),
    ("duplicate key", "a: 1\nb: 2\na: 3\n", "m.yaml:3: a: duplicate key 'a' (first at line 1)"),
]


@pytest.mark.parametrize("why,text,expected", BAD_YAML, ids=[c[0] for c in BAD_YAML])
def test_bad_yaml_is_a_clear_error_with_a_line(tmp_path, why, text, expected):
    found = diagnostics(tmp_path, text)
    assert len(found) == 1 and expected in found[0], found


BAD_BYTES = [
    ("UTF-16", "kind: Host\n".encode("utf-16"), "m.yaml:1: the file is UTF-16 or UTF-32 encoded"),
    ("UTF-32", "kind: Host\n".encode("utf-32"), "m.yaml:1: the file is UTF-16 or UTF-32 encoded"),
    ("invalid UTF-8", b"a: 1\nb: \xc3\x28\n", "m.yaml:2: not valid UTF-8 (byte 0xc3)"),
    ("binary", b"a: 1\n\n\x7fELF\x00\x01", "m.yaml:3: the file holds a NUL byte"),
]


@pytest.mark.parametrize("why,raw,expected", BAD_BYTES, ids=[c[0] for c in BAD_BYTES])
def test_files_that_are_not_utf8_text_name_a_line(tmp_path, why, raw, expected):
    found = diagnostics(tmp_path, raw)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_oversized_file_is_refused_before_parsing(tmp_path):
    found = diagnostics(tmp_path, b"# " + b"x" * (8 * 1024 * 1024) + b"\n")
    assert found == ["m.yaml: the file is over 8388608 bytes, the limit for one manifest file (split it into "
                     "several files)"]


def test_merge_keys_and_plain_values_still_load(tmp_path):
    path = write(tmp_path, "m.yaml", HOST + """\
        kind: Network
        metadata: {name: n, labels: {date: 2024-01-01, "yes": no}}
        spec: &net
          forward: isolated
          mtu: 0x5dc
        """)
    manifest = pipeline.load([path])
    item = next(iter(manifest.items.values()))
    assert item.spec.mtu == 1500 and item.doc.metadata.labels == {"date": "2024-01-01", "yes": "no"}


# --- values that would change or break a host's configuration -------------------------------------

CONTROL = [("newline", "\\n"), ("tab", "\\t"), ("carriage return", "\\r"), ("U+2028", "\\u2028"),
           ("U+FFFE", "\\uFFFE"), ("lone surrogate", "\\uD800"), ("NUL", "\\0"), ("C1 NEL", "\\x85")]


@pytest.mark.parametrize("why,escape", CONTROL, ids=[c[0] for c in CONTROL])
def test_control_and_non_xml_characters_are_refused(tmp_path, why, escape):
    found = diagnostics(tmp_path, HOST + f'kind: StoragePool\nmetadata: {{name: p}}\nspec: {{path: "/srv/a{escape}b"}}\n')
    assert len(found) == 1 and found[0].startswith("m.yaml:7: spec.path: character U+"), found


HOSTILE_URIS = [
    "qemu+ext:///system?command=/tmp/x",
    "qemu+ssh://h/system?command=/tmp/x",
    "qemu+ssh://h/system?netcat=/tmp/x",
    "qemu+ssh://h/system?proxy=netcat",
    "qemu+ssh://h/system?keyfile=/k;command=/tmp/x",
    "qemu+ssh://h/system?comm%61nd=/tmp/x",
    "qemu+ssh://-oProxyCommand=touch%20x/system",
    "qemu+ssh://-oProxyCommand=x/system",
    "qemu+ssh://-lroot@h/system",
    "qemu+libssh2://h/system?known_hosts=/x",
    "qemu+ssh://h/system?name=qemu+ext:///x",
    "qemu+tcp://h/system",
    "xen:///system",
    "qemu:///embed?root=/tmp",
    "qemu+unix:///system?socket=/x&socket=/y",
    "qemu+unix:///system?socket=/" + "x" * 107,
]


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_uris_that_run_programs_or_are_unsupported_are_refused(tmp_path, uri):
    found = diagnostics(tmp_path, f'kind: Host\nmetadata: {{name: h}}\nspec:\n  uri: "{uri}"\n')
    assert len(found) == 1 and found[0].startswith("m.yaml:4: spec.uri: "), found


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu:///session", "qemu+unix:///system?socket=/run/x.sock",
                                 "qemu+ssh://root@127.0.0.1/system", "qemu+ssh://h.example:2222/system?keyfile=/k&no_tty=1",
                                 "qemu+tls://h.example/system?pkipath=/etc/pki", "qemu://h.example/system",
                                 "qemu+ssh://[fd00::1]/system"])
def test_documented_uris_are_accepted(uri):
    assert uris.problem(uri) is None


def test_tcp_only_when_asked_for(tmp_path):
    path = write(tmp_path, "m.yaml", 'kind: Host\nmetadata: {name: h}\nspec: {uri: "qemu+tcp://h/system", insecure_tcp: true}\n')
    assert pipeline.load([path]).hosts["h"].spec.uri == "qemu+tcp://h/system"


def test_validate_and_plan_never_run_the_command_of_a_uri(tmp_path):
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    path = write(tmp_path, "m.yaml", f'kind: Host\nmetadata: {{name: h}}\nspec: {{uri: "qemu+ext:///system?command={script}"}}\n')
    for command in ("validate", "plan", "apply", "status", "drift"):
        args = [command, str(path)] + (["--auto-approve"] if command == "apply" else [])
        done = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "m.yaml:3: spec.uri: transport 'ext'" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_adapter_refuses_such_a_uri_too():
    """A saved plan names URIs as well: the adapter checks them before opening anything."""
    from reconciler.adapter import Host
    from reconciler.errors import HostError
    with pytest.raises(HostError, match="refusing URI"):
        Host("h", "qemu+ext:///system?command=/bin/true")


HOSTILE_VALUES = [
    # (where, spec text, field, message)
    ("DHCP name with a quote", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, ipv4: {address: 10.9.0.1/24, dhcp: {hosts: [{mac: '52:54:00:00:00:01', ip: 10.9.0.5, name: \"a'b\"}]}}}\n",
     "spec.ipv4.dhcp.hosts.0.name", "is not a DNS name"),
    ("DHCP name with <&", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, ipv4: {address: 10.9.0.1/24, dhcp: {hosts: [{mac: '52:54:00:00:00:01', ip: 10.9.0.5, name: 'a<b&c'}]}}}\n",
     "spec.ipv4.dhcp.hosts.0.name", "is not a DNS name"),
    ("DHCP name with a comma", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, ipv4: {address: 10.9.0.1/24, dhcp: {hosts: [{mac: '52:54:00:00:00:01', ip: 10.9.0.5, name: 'a,ignore'}]}}}\n",
     "spec.ipv4.dhcp.hosts.0.name", "is not a DNS name"),
    ("bridge .", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, bridge: '.'}\n", "spec.bridge", "is not an interface name"),
    ("bridge ..", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, bridge: '..'}\n", "spec.bridge", "is not an interface name"),
    ("bridge too long", "kind: Network\nmetadata: {name: n}\nspec: {forward: isolated, bridge: abcdefghijklmnop}\n", "spec.bridge", "String should match"),
    ("pool path with ..", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /x/../d}\n", "spec.path", "contains '..'"),
    ("pool path component over 255 bytes", f"kind: StoragePool\nmetadata: {{name: p}}\nspec: {{path: /srv/{'x' * 256}}}\n", "spec.path", "over 255 bytes"),
    ("pool in /proc", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /proc/x}\n", "spec.path", "cannot hold a storage pool"),
    ("pool at /", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /}\n", "spec.path", "cannot hold a storage pool"),
    ("fs pool without a device", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: fs, path: /srv/p}\n", "spec", "needs source.devices"),
    ("fs pool on two devices", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: fs, path: /srv/p, source: {devices: [/dev/a, /dev/b]}}\n", "spec", "exactly one device"),
    ("NFS export on a dir pool", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /srv/p, source: {dir: /x}}\n", "spec", "takes no source.dir"),
    ("iscsi-direct without initiator", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: iscsi-direct, source: {host: h, target: iqn.2026-01.org.x:t}}\n", "spec", "needs source.initiator"),
    ("rbd pool with a path", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: rbd, path: /srv/p, source: {host: h, name: p}}\n", "spec.path", "has no path"),
    ("overwrite on a dir pool", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /srv/p, overwrite: true}\n", "spec.overwrite", "pools on a device"),
    ("permissions on an fs pool", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: fs, path: /srv/p, source: {devices: [/dev/a]}, permissions: {mode: '0750'}}\n", "spec.permissions", "for dir pools"),
    ("not an IQN", "kind: StoragePool\nmetadata: {name: p}\nspec: {type: iscsi, source: {host: h, target: 'x y'}}\n", "spec.source.target", "pattern"),
    ("bad mode", "kind: StoragePool\nmetadata: {name: p}\nspec: {path: /srv/p, permissions: {mode: '0999'}}\n", "spec.permissions.mode", "pattern"),
    ("volume from a clone and an image", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1GiB, clone: p/a, source: {path: /i.qcow2}}\n", "spec", "not source and clone"),
    ("encrypted volume from an image", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1GiB, source: {path: /i.qcow2}, encryption: {passphrase: {env: HOME}}}\n", "spec", "would not be encrypted"),
    ("URL without checksum", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1GiB, source: {url: 'https://example.org/i.qcow2'}}\n", "spec.source", "needs its sha256"),
    ("URL of another scheme", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1GiB, source: {url: 'file:///etc/shadow', sha256: %s}}\n" % ("a" * 64), "spec.source.url", "pattern"),
    ("metadata allocation of raw", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, format: raw, capacity: 1GiB, allocation: metadata}\n", "spec", "for qcow2 volumes"),
    ("passphrase as text", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1GiB, encryption: {passphrase: hunter2}}\n", "spec.encryption.passphrase", "valid dictionary"),
    ("volume without capacity", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p}\n", "spec.capacity", "Field required"),
    ("seed with a capacity", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1MiB, cloud_init: {user_data: {}}}\n", "spec.capacity", "leave capacity out"),
    ("seed as qcow2", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, format: qcow2, cloud_init: {user_data: {}}}\n", "spec.format", "format raw"),
    ("seed on a backing", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, backing: p/a, cloud_init: {user_data: {}}}\n", "spec.backing", "not with backing"),
    ("seed from an image", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, source: {path: /i.iso}, cloud_init: {user_data: {}}}\n", "spec.source", "not with source"),
    ("seed as a clone", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, clone: p/a, cloud_init: {user_data: {}}}\n", "spec.clone", "not with clone"),
    ("encrypted seed", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, encryption: {passphrase: {env: HOME}}, cloud_init: {user_data: {}}}\n", "spec.encryption", "not with encryption"),
    ("seed with an allocation", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, allocation: full, cloud_init: {user_data: {}}}\n", "spec.allocation", "not with allocation"),
    ("user-data text without a header", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {user_data: 'hostname: x'}}\n", "spec.cloud_init.user_data", "starts with #cloud-config"),
    ("user-data neither text nor mapping", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {user_data: [1]}}\n", "spec.cloud_init.user_data", "a mapping (written as #cloud-config YAML) or a text"),
    ("instance-id not a string", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {meta_data: {instance-id: [a]}}}\n", "spec.cloud_init.meta_data", "instance-id is a non-empty string"),
    ("local-hostname with a space", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {meta_data: {local-hostname: 'a b'}}}\n", "spec.cloud_init.meta_data", "is not a DNS name"),
    ("network-config version 1", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {network_config: {version: 1, config: []}}}\n", "spec.cloud_init.network_config", "version 2"),
    ("network-config under network:", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {network_config: {network: {version: 2}}}}\n", "spec.cloud_init.network_config", "without 'network:'"),
    ("control character in user-data", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {user_data: \"#cloud-config\\n\\x01\"}}\n", "spec.cloud_init.user_data", "character U+0001 is not allowed"),
    ("newline outside cloud_init", "kind: Volume\nmetadata: {name: v}\nspec: {pool: \"p\\nq\", cloud_init: {user_data: \"#cloud-config\\n\"}}\n", "spec.pool", "character U+000A is not allowed"),
    ("unknown cloud_init field", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, cloud_init: {vendor_data: {}}}\n", "spec.cloud_init.vendor_data", "unknown field"),
    ("disk path /", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 64MiB, disks: [{path: /}]}\n", "spec.disks.0.path", "root directory"),
    ("relative disk path", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 64MiB, disks: [{path: a.img}]}\n", "spec.disks.0.path", "absolute path"),
    ("memory.current 0", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: {current: 0, max: 64MiB}}\n", "spec.memory", "current must be at least"),
    ("memory beyond libvirt", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 9007199254740992KiB}\n", "spec.memory", "above libvirt's largest"),
    ("memory with 40 digits", f"kind: Guest\nmetadata: {{name: g}}\nspec: {{vcpus: 1, memory: '{'9' * 40}'}}\n", "spec.memory.max", "far larger than any size"),
    ("raw capacity beyond 2^63", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, format: raw, capacity: 8388608TiB}\n", "spec.capacity", "above the largest raw image"),
    ("qcow2 capacity beyond 2PiB", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 2049TiB}\n", "spec.capacity", "above the largest qcow2 image"),
    ("IPv6 listen with a scope", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 64MiB, graphics: {listen: 'fe80::1%eth0'}}\n", "spec.graphics.listen", "%scope"),
    ("machine without PCI", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 64MiB, machine: isapc}\n", "spec.machine", "String should match"),
    ("qcow2 capacity not in KiB", "kind: Volume\nmetadata: {name: v}\nspec: {pool: p, capacity: 1000}\n", "spec.capacity", "whole number of KiB"),
    ("volume reference with a quote", "kind: Guest\nmetadata: {name: g}\nspec: {vcpus: 1, memory: 64MiB, disks: [{volume: \"p/a'b\"}]}\n", "spec.disks.0.volume", "String should match"),
]


@pytest.mark.parametrize("why,text,field,message", HOSTILE_VALUES, ids=[c[0] for c in HOSTILE_VALUES])
def test_values_libvirt_or_its_consumers_would_refuse_or_mangle(tmp_path, why, text, field, message):
    found = [f for f in diagnostics(tmp_path, HOST + text) if f" {field}: " in f]
    assert found and message in found[0], diagnostics(tmp_path, HOST + text)
    assert found[0].startswith("m.yaml:7:"), found


@pytest.mark.parametrize("spelling", ["/srv/d/.", "/srv/d/", "/srv//d", "/srv/./d"])
def test_pool_paths_spelled_differently_are_the_same_directory(tmp_path, spelling):
    found = diagnostics(tmp_path, HOST + "kind: StoragePool\nmetadata: {name: a}\nspec: {path: /srv/d}\n---\n"
                                          f"kind: StoragePool\nmetadata: {{name: b}}\nspec: {{path: '{spelling}'}}\n")
    assert found == ["m.yaml:11: spec.path: path /srv/d is also the path of StoragePool 'a'"]


def test_plan_checks_what_only_the_host_knows(tmp_path):
    """hostcheck is pure: the host's facts as observe reads them (here: a host without KVM whose
    q35 takes 8 vCPUs and which has 1 GiB of memory)."""
    from reconciler import hostcheck
    from reconciler.live import HostFacts, HostState
    path = write(tmp_path, "m.yaml", HOST + """\
        kind: Guest
        metadata: {name: g}
        spec: {type: kvm, machine: q35, vcpus: 9, memory: 2GiB}
        """)
    manifest = pipeline.load([path])
    state = HostState("local", "qemu:///system", HostFacts({"qemu"}, {"q35": 8, "pc": 255}, 1024**2))
    found = [str(d).replace(str(tmp_path) + "/", "") for d in hostcheck.problems(manifest.for_host("local"), state)]
    assert found == ["m.yaml:7: spec.type: host 'local' offers no 'kvm' guests (it offers: qemu)",
                     "m.yaml:7: spec.vcpus: machine type 'q35' takes at most 8 vCPUs on host 'local'",
                     "m.yaml:7: spec.memory.max: 2GiB is more than the 1GiB of memory host 'local' has: "
                     "QEMU cannot start it"]


POOL_CONFLICTS = [
    ("kind: StoragePool\nmetadata: {name: d}\nspec: {type: disk, source: {devices: [/dev/a]}}\n---\n"
     "kind: Volume\nmetadata: {name: v}\nspec: {pool: d, capacity: 1GiB}\n", "m.yaml:11: spec.pool", "is a disk pool"),
    ("kind: StoragePool\nmetadata: {name: d}\nspec: {type: disk, source: {devices: [/dev/a]}}\n---\n"
     "kind: StoragePool\nmetadata: {name: e}\nspec: {type: logical, source: {devices: [/dev/b, /dev/a]}}\n",
     "m.yaml:11: spec.source.devices", "also a device of StoragePool 'd'"),
]


@pytest.mark.parametrize("text,where,message", POOL_CONFLICTS)
def test_pools_that_libvirt_would_refuse_together(tmp_path, text, where, message):
    found = [f for f in diagnostics(tmp_path, HOST + text) if f.startswith(where)]
    assert found and message in found[0], diagnostics(tmp_path, HOST + text)
