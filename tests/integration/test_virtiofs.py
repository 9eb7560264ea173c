"""A virtiofs share on the real daemon (virtiofsd from qemu-system-common): a running guest with
shared memory gets the share, virtiofsd serves the host directory, and a second plan is empty."""
from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd


def test_a_virtiofs_share_is_attached_and_served(env):
    share = IMAGES / f"{env.prefix}-share"
    share.mkdir()
    (share / "hello.txt").write_text("hello from the host\n")
    path = env.write(small_guest("P-fs", f"""\
  memory_backing: {{source: memfd, access: shared}}
  filesystems: [{{source: {share}, target: hostshare}}]
"""))
    env.converge()
    live = env.lookup("fs").XMLDesc(0)
    assert "<driver type='virtiofs'/>" in live and f"<source dir='{share}'/>" in live and "<target dir='hostshare'/>" in live
    assert "<access mode='shared'/>" in live
    served = subprocess.run(["pgrep", "-af", "virtiofsd"], capture_output=True, text=True).stdout
    assert str(share) in served, served
    path.write_text(path.read_text().replace("filesystems: [", "filesystems: [] # ["))
    code, doc = env.plan()
    assert code == 2 and {c["path"]: c["impact"] for c in doc["changes"][0]["changes"]} == {"filesystems[hostshare]": "restart"}
