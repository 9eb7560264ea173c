"""Benchmark: apply and no-op plan of many objects, next to plain libvirt-python read/define scripts.

Usage: .venv/bin/python bench/plan_apply.py [--guests 200] [--networks 20] [--pools 20] [--runs 3]
Creates objects named vrtbench-* on qemu:///system, prints timings, and removes them again.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import remove_prefixed  # noqa: E402

URI = "qemu:///system"
PREFIX = "vrtbench"
IMAGES = Path("/var/lib/libvirt/images")

READ_ONLY = """
import libvirt
c = libvirt.openReadOnly("qemu:///system")
n = 0
for d in c.listAllDomains(0):
    d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE); n += 1
for x in c.listAllNetworks(0):
    x.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE); n += 1
for p in c.listAllStoragePools(0):
    p.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE); n += 1
    if p.isActive():
        for v in p.listAllVolumes(0):
            v.XMLDesc(0); n += 1
print(n)
"""

DEFINE_ONLY = """
import json, sys, libvirt
docs = json.load(open(sys.argv[1]))
c = libvirt.open("qemu:///system")
for xml in docs["networks"]:
    c.networkDefineXMLFlags(xml, libvirt.VIR_NETWORK_DEFINE_VALIDATE).create()
for xml in docs["pools"]:
    p = c.storagePoolDefineXML(xml, libvirt.VIR_STORAGE_POOL_DEFINE_VALIDATE); p.build(0); p.create()
for pool, xml in docs["volumes"]:
    c.storagePoolLookupByName(pool).createXML(xml, 0)
for xml in docs["domains"]:
    c.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
"""


def manifests(guests: int, networks: int, pools: int) -> str:
    docs = [f'kind: Host\nmetadata: {{name: local}}\nspec: {{uri: "qemu:///system", instance: {PREFIX}}}']
    for n in range(networks):
        docs.append(f"kind: Network\nmetadata: {{name: {PREFIX}-net{n}}}\n"
                    f"spec: {{forward: isolated, bridge: {PREFIX}{n}, autostart: false}}")
    for p in range(pools):
        docs.append(f"kind: StoragePool\nmetadata: {{name: {PREFIX}-pool{p}}}\n"
                    f"spec: {{path: {IMAGES}/{PREFIX}-pool{p}, autostart: false}}")
    for g in range(guests):
        pool, net = f"{PREFIX}-pool{g % pools}", f"{PREFIX}-net{g % networks}"
        docs.append(f"kind: Volume\nmetadata: {{name: g{g}.qcow2}}\nspec: {{pool: {pool}, capacity: 16MiB}}")
        docs.append(f"kind: Guest\nmetadata: {{name: {PREFIX}-g{g}}}\nspec:\n  state: shutoff\n"
                    f"  vcpus: 1\n  memory: 64MiB\n  disks: [{{volume: {pool}/g{g}.qcow2}}]\n"
                    f"  interfaces: [{{network: {net}}}]\n  graphics: {{type: vnc}}")
    return "\n---\n".join(docs) + "\n"


def cleanup() -> None:
    conn = libvirt.open(URI)
    try:
        remove_prefixed(conn, PREFIX)
    finally:
        conn.close()


def snapshot() -> dict:
    """The XML our apply defined, for the plain define-only script to define again."""
    conn = libvirt.openReadOnly(URI)
    docs = {"networks": [], "pools": [], "volumes": [], "domains": []}
    for n in conn.listAllNetworks(0):
        if n.name().startswith(PREFIX):
            docs["networks"].append(n.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    for p in conn.listAllStoragePools(0):
        if p.name().startswith(PREFIX):
            docs["pools"].append(p.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE))
            docs["volumes"] += [(p.name(), v.XMLDesc(0)) for v in p.listAllVolumes(0)]
    for d in conn.listAllDomains(0):
        if d.name().startswith(PREFIX):
            docs["domains"].append(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    conn.close()
    return docs


def timed(cmd: list[str], ok=(0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{cmd[:4]} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--guests", type=int, default=200)
    args.add_argument("--networks", type=int, default=20)
    args.add_argument("--pools", type=int, default=20)
    args.add_argument("--runs", type=int, default=3)
    opts = args.parse_args()
    tool = [sys.executable, "-m", "reconciler"]
    cleanup()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(manifests(opts.guests, opts.networks, opts.pools))
        objects = opts.guests * 2 + opts.networks + opts.pools
        try:
            results = {"objects": objects}
            results["apply_create_s"] = timed(tool + ["apply", str(path), "--auto-approve"])
            plans = [timed(tool + ["plan", str(path)]) for _ in range(opts.runs)]
            drifts = [timed(tool + ["drift", str(path)]) for _ in range(opts.runs)]
            reads = [timed([sys.executable, "-c", READ_ONLY]) for _ in range(opts.runs)]
            results["drift_noop_s_median"] = statistics.median(drifts)
            results["plan_noop_s_median"] = statistics.median(plans)
            results["plain_read_s_median"] = statistics.median(reads)
            results["python_startup_s"] = statistics.median(
                timed([sys.executable, "-c", "import libvirt"]) for _ in range(opts.runs))
            docs = Path(tmp) / "docs.json"
            docs.write_text(json.dumps(snapshot()))
            cleanup()
            results["plain_define_s"] = timed([sys.executable, "-c", DEFINE_ONLY, str(docs)])
        finally:
            cleanup()
    print(f"{opts.guests} guests, {opts.networks} networks, {opts.pools} pools, {opts.guests} volumes "
          f"({objects} objects) on {URI}")
    for key, value in results.items():
        print(f"  {key:24} {value:.3f}" if isinstance(value, float) else f"  {key:24} {value}")


if __name__ == "__main__":
    main()
