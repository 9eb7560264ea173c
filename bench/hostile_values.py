"""Hostile values on the real daemon: each is validated; each one validation accepts is applied,
planned again and read back. Counts what validation refused, what was accepted and converged,
and what was accepted but failed at apply, did not converge or left XML libvirt cannot parse
(an injection). Objects carry a unique prefix and are removed afterwards.

    .venv/bin/python bench/hostile_values.py [--uri qemu:///system] [--only FIELD]

Exit 1 when any accepted value failed."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reconciler import pipeline  # noqa: E402
from reconciler.errors import ReconcilerError  # noqa: E402
from tests.helpers import IMAGES, remove_prefixed  # noqa: E402

ATOMS = ["'", '"', "<", ">", "&", "&amp;", ",", ";", " ", "\\t", "\\n", "\\r", "\\u2028", "\\uFFFE", "\\0", "\\e",
         "é", "💥", "-", "--x", ".", "..", "/", "\\\\", "$(id)", "`id`", "%s", "%", "*", "?", "#", "=", ":",
         "]]>", "<!--", "\\u00a0", "x" * 300]


def _strings(make) -> list[str]:
    """Values around each atom, as YAML double-quoted scalars (escapes are YAML's)."""
    out = []
    for atom in ATOMS:
        out += [f'"{make(atom)}"', f'"{make("a" + atom + "b")}"']
    return out


NUMBERS = ["-1", "0", "1", "1.5", "true", '"1e3"', "0x10", ".inf", "2147483648", "4294967296",
           "9007199254740991", "9007199254740992", "9223372036854775807", "18446744073709551616", "1" + "0" * 40]

HOST = 'kind: Host\nmetadata: {name: local}\nspec: {uri: "URI", instance: PFX-i}\n---\n'
NET = "kind: Network\nmetadata: {name: PFX-n}\nspec: {forward: isolated, autostart: false@X@}\n"
POOL = "kind: StoragePool\nmetadata: {name: PFX-p}\nspec: {path: @X@, autostart: false}\n"
VOL = "kind: Volume\nmetadata: {name: @X@}\nspec: {pool: PFX-p, capacity: @Y@, format: @Z@, protect: false}\n"
GUEST = "kind: Guest\nmetadata: {name: PFX-g}\nspec: {state: shutoff, vcpus: @X@, memory: @Y@@Z@}\n"
POOL_OK = POOL.replace("@X@", f'"{IMAGES}/PFX-p"') + "---\n"


def fill(template: str, x: str = "", y: str = "", z: str = "") -> str:
    """The template with @X@, @Y@, @Z@ replaced (values may hold any character)."""
    return template.replace("@X@", x).replace("@Y@", y).replace("@Z@", z)


CASES: dict[str, list[str]] = {
    "network name": [fill(NET).replace("PFX-n", v) for v in _strings(lambda a: f"PFX-{a}")],
    "dhcp host name": [fill(NET, f", ipv4: {{address: 10.254.77.1/24, dhcp: {{hosts: [{{mac: '52:54:00:00:00:01', "
                                 f"ip: 10.254.77.5, name: {v}}}]}}}}") for v in _strings(lambda a: a)],
    "bridge": [fill(NET, f", bridge: {v}") for v in _strings(lambda a: f"PFX{a}")],
    "mtu": [fill(NET, f", mtu: {v}") for v in NUMBERS + ["67", "68", "9000", "65535", "65536"]],
    "pool path": [fill(POOL, v) for v in _strings(lambda a: f"{IMAGES}/PFX-p{a}")] + [fill(POOL, v) for v in (
        '"/"', '"/proc"', '"/sys/x"', '"/dev/shm/x"', '"relative"', f'"{IMAGES}/PFX-p/."', f'"{IMAGES}//PFX-p"')],
    "volume name": [POOL_OK + fill(VOL, v, "1MiB", "qcow2") for v in _strings(lambda a: f"PFX-v{a}")],
    "capacity": [POOL_OK + fill(VOL, "PFX-v", v, fmt) for v in NUMBERS + ["1KiB", "1PiB", "2PiB", "3PiB", "8EiB"]
                 for fmt in ("qcow2", "raw")],
    "memory": [fill(GUEST, "1", v) for v in NUMBERS + ["1MiB", "1023KiB", "1TiB", "{current: 0, max: 64MiB}",
                                                        "{current: 1KiB, max: 64MiB}", "{current: 128MiB, max: 64MiB}"]],
    "vcpus": [fill(GUEST, v, "64MiB") for v in NUMBERS + ["255", "256", "288", "{current: 0, max: 2}"]],
    "machine": [fill(GUEST, "1", "64MiB", f", machine: {v}") for v in _strings(lambda a: f"pc{a}")
                + ['"q35"', '"pc"', '"pc-q35-1.0"', '"isapc"']],
    "cdrom path": [fill(GUEST, "1", "64MiB", f", disks: [{{device: cdrom, path: {v}}}]")
                   for v in _strings(lambda a: f"{IMAGES}/PFX-c{a}.iso")],
    "vnc listen": [fill(GUEST, "1", "64MiB", f", graphics: {{listen: {v}}}")
                   for v in ['"::1"', '"fe80::1%lo"', '"::ffff:127.0.0.1"', '"0.0.0.0"', '"127.0.0.1 "', '"localhost"',
                             '"1.2.3.4.5"', '"::"', '"127.1"', '"0127.0.0.1"']],
    "uri": [HOST.replace('"URI"', v) for v in _strings(lambda a: f"qemu:///system?socket=/run/x{a}") + [
        '"qemu+ext:///system?command=/bin/true"', '"qemu+ssh://x/system?command=/bin/true"', '"test:///default"']],
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def attempt(text: str, uri: str, conn) -> tuple[str, str]:
    """(outcome, detail) for one manifest: refused, converged, or a failure after acceptance."""
    prefix = f"vrh{uuid.uuid4().hex[:6]}"
    body = text if text.startswith("kind: Host") else HOST + text
    body = body.replace("PFX", prefix).replace("URI", uri)
    with tempfile.TemporaryDirectory(prefix="vr-hostile-") as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text(body, encoding="utf-8")
        try:
            pipeline.load([path])
        except ReconcilerError as exc:
            return "refused", str(exc).splitlines()[0][:120]
        except Exception as exc:  # noqa: BLE001
            return "TRACEBACK at validate", repr(exc)
        try:
            done = run("apply", str(path), "--auto-approve")
            if "Traceback" in done.stderr:
                return "TRACEBACK at apply", done.stderr.strip().splitlines()[-1]
            if done.returncode != 0:
                failed = [line for line in (done.stdout + done.stderr).splitlines() if "failed" in line or "Error" in line]
                detail = (failed or [""])[0].strip()[:200]
                if "plan cannot be made" in done.stderr:
                    return "refused at plan", detail
                if "cannot be reached" in detail:      # a valid URI of a socket that is not there
                    return "unreachable, as expected", detail
                return "FAILED at apply", detail
            again = run("plan", str(path))
            if again.returncode != 0:
                return "DID NOT CONVERGE", (again.stdout + again.stderr)[-200:]
            status = run("status", str(path))
            if status.returncode != 0 or " 0 broken" not in status.stdout:
                return "BROKE THE HOST'S XML", status.stdout[-200:]
            return "converged", ""
        finally:
            remove_prefixed(conn, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="qemu:///system")
    parser.add_argument("--only", help="one field of: " + ", ".join(CASES))
    args = parser.parse_args()
    import libvirt
    conn = libvirt.open(args.uri)
    started = time.monotonic()
    totals: dict[str, int] = {}
    bad = []
    for field, texts in CASES.items():
        if args.only and field != args.only:
            continue
        counts: dict[str, int] = {}
        for text in texts:
            outcome, detail = attempt(text, args.uri, conn)
            counts[outcome] = counts.get(outcome, 0) + 1
            totals[outcome] = totals.get(outcome, 0) + 1
            if outcome.isupper() or outcome.split()[0].isupper():
                bad.append((field, text.strip().splitlines()[-1][:100], outcome, detail))
        print(f"{field:15} {len(texts):4} values: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())), flush=True)
    tried = sum(totals.values())
    print(f"\n{tried} values in {time.monotonic() - started:.0f} s: " + ", ".join(f"{n} {o}" for o, n in sorted(totals.items())))
    for field, text, outcome, detail in bad:
        print(f"  {field}: {outcome}: {text}\n      {detail}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
