"""Preflight during plan, on the real daemon: what apply would fail on halfway is a plan error
naming the file, line and field, and nothing on the host changes."""
from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import BASE, small_guest

pytestmark = pytest.mark.libvirtd

HOST = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "qemu:///system", instance: P-i}\n'


def _refused(env, *expected: str) -> str:
    done = env.run("plan", str(env.dir))
    assert done.returncode == 1, done.stdout + done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr
    return done.stderr


@pytest.fixture
def links(env):
    made = []

    def make(name: str, kind: str) -> str:
        extra = ["peer", "name", name[:-1] + "p"] if kind == "veth" else []      # this kernel has no dummy links
        subprocess.run(["ip", "link", "add", name, "type", kind, *extra], check=True)
        made.append(name)
        return name
    yield make
    for name in made:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_a_bridged_network_needs_an_existing_host_bridge(env, links):
    bridge = f"{env.prefix}b"
    env.write(HOST + f"---\nkind: Network\nmetadata: {{name: P-lan}}\nspec: {{forward: bridge, bridge: {bridge}}}\n")
    _refused(env, "m.yaml:7: spec.bridge: host 'local' has no interface", repr(bridge))
    links(bridge, "veth")
    _refused(env, f"{bridge!r} on host 'local' is not a bridge (libvirt reports an interface of type 'ethernet')")
    subprocess.run(["ip", "link", "del", bridge], check=True)
    links(bridge, "bridge")
    code, _ = env.plan()
    assert code == 2


def test_pool_directories_and_disk_images_are_checked(env, tmp_path):
    blocker = IMAGES / f"{env.prefix}-file"
    blocker.write_text("x")
    path = env.write(BASE.replace("/var/lib/libvirt/images/P-pool", f"{blocker}/pool")
                     .replace("    - {device: cdrom}", f"    - {{device: cdrom, path: {IMAGES}/{env.prefix}-none.iso}}"))
    err = _refused(env, f"spec.path: the pool directory cannot be created: {blocker} is not a directory",
                   f"spec.disks.1.path: {IMAGES}/{env.prefix}-none.iso does not exist on host 'local'")
    lines = path.read_text().splitlines()
    pool_line = next(n for n, line in enumerate(lines, 1) if f"{blocker}/pool" in line)
    media_line = next(n for n, line in enumerate(lines, 1) if "-none.iso" in line)
    assert f"m.yaml:{pool_line}: spec.path" in err and f"m.yaml:{media_line}: spec.disks.1.path" in err, err


def test_a_guest_that_will_start_needs_its_firmware(env):
    path = env.write(BASE.replace("state: running", "state: shutoff"))
    env.converge()
    dom = env.lookup("vm")
    xml = dom.XMLDesc(0).replace("</os>", "<loader readonly='yes' type='pflash'>/nonexistent/OVMF_CODE.fd</loader>"
                                          "</os>")
    env.conn.defineXML(xml)
    path.write_text(path.read_text().replace("state: shutoff", "state: running"))
    _refused(env, "spec.state: its firmware file /nonexistent/OVMF_CODE.fd is missing on host 'local'")
    assert not env.lookup("vm").isActive()


def test_a_block_disk_needs_a_block_device(env):
    env.write(small_guest("P-blk", f"  disks:\n    - {{block: /dev/{env.prefix}-none}}\n"))
    err = _refused(env, f"spec.disks.0.block: /dev/{env.prefix}-none is not a block device on host 'local'")
    assert "m.yaml:" in err, err
