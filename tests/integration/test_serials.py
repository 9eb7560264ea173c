"""Serial ports of every kind on the real daemon: a running guest gets a pty console with a log, a
telnet port on 127.0.0.1, a file and a unix socket (QEMU opens each: the socket and the TCP port
answer, the files exist); a port moved to another kind waits for a restart; a port added by hand
stays; adopt writes them back and plans empty."""
from __future__ import annotations

import os
import socket

import libvirt
import pytest

from tests.integration.conftest import IMAGES
from tests.integration.test_core_loop import small_guest

pytestmark = pytest.mark.libvirtd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serial_ports_of_every_kind(env):
    port = _free_port()
    files = {name: IMAGES / f"{env.prefix}-{name}" for name in ("console.log", "serial2.log", "serial3.sock")}
    spec = f"""\
  serials:
    - {{port: 0, type: pty, log: {files['console.log']}}}
    - {{port: 1, type: tcp, host: 127.0.0.1, service: {port}, mode: bind, protocol: telnet}}
    - {{port: 2, type: file, path: {files['serial2.log']}}}
    - {{port: 3, type: unix, path: {files['serial3.sock']}, mode: bind}}
"""
    path = env.write(small_guest("P-ser", spec).replace("  console: false\n", ""))
    env.converge()
    dom = env.lookup("ser")
    assert dom.isActive()
    live = dom.XMLDesc(0)
    for part in (f"<log file='{files['console.log']}'/>", f"service='{port}'", "<protocol type='telnet'/>",
                 f"<source path='{files['serial2.log']}'/>", "<console type='pty'"):
        assert part in live, part
    assert files["console.log"].exists() and files["serial2.log"].exists()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass                                                          # QEMU listens on the telnet port
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(files["serial3.sock"]))

    path.write_text(path.read_text().replace(f"{{port: 2, type: file, path: {files['serial2.log']}}}",
                                             f"{{port: 2, type: unix, path: {files['serial2.log']}.sock, mode: bind}}"))
    code, doc = env.plan()
    changes = {c["path"]: c["impact"] for c in doc["changes"][0]["changes"]}
    assert changes == {"serials[2].mode": "restart", "serials[2].path": "restart", "serials[2].type": "restart"}, changes
    env.converge("--restart", "--force-stop", "--shutdown-timeout", "1")
    saved = env.lookup("ser").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert f"<serial type='unix'>\n      <source mode='bind' path='{files['serial2.log']}.sock'/>" in saved, saved

    text = env.readopt(path, "ser")
    for part in (f"log: {files['console.log']}", f"service: {port}", "protocol: telnet", "type: unix",
                 f"path: {files['serial3.sock']}"):
        assert part in text, (part, text)
    code, doc = env.plan()
    assert code == 0, doc
    for file in files.values():
        if file.exists():
            os.unlink(file)
