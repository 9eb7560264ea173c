"""Benchmark: apply and no-op plan of many objects, next to plain libvirt-python read/define scripts.

Usage: .venv/bin/python bench/plan_apply.py [--guests 200] [--networks 20] [--pools 20] [--runs 3]
       .venv/bin/python bench/plan_apply.py --sizes 10,200,1000     (issue 11's table)
Creates objects named vrtbench-* on qemu:///system, prints timings, and removes them again.
With --sizes, each N is N guests, N/10 NAT networks, N/10 dir pools and N qcow2 volumes; the
table shows apply (parallel, then --parallelism 1) beside the plain sequential define script, the
no-op plan beside the plain read-all script, and the no-op plan's peak RSS; then where the no-op
plan's time goes (import, load, observe, plan). Targets (issue 11):
no-op plan within 2x of plain read at N=1000 and under 0.3 s at N=10; apply within 1.3x of plain
define; peak RSS under 150 MB at N=1000.
"""
from __future__ import annotations

import argparse
import json
import os
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
                    f"spec: {{forward: nat, bridge: {PREFIX}{n}, autostart: false, "
                    f"ipv4: {{address: 10.{150 + n // 250}.{n % 250}.1/24}}}}")
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


PHASES = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from reconciler import gitinfo, pipeline
t1 = time.perf_counter()
paths = [Path(sys.argv[1])]
manifest = pipeline.load(paths)
t2 = time.perf_counter()
states, errors = pipeline.observe(manifest, pipeline.hosts_of(manifest, None))
t3 = time.perf_counter()
pipeline.make_plan(manifest, states, pipeline.PlanOptions(), gitinfo.provenance(paths), errors)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "observe": t3 - t2, "plan": t4 - t3}))
"""


# as an installed tool runs: its modules' bytecode written once and read after (a shell with
# PYTHONDONTWRITEBYTECODE=1 would compile every module on every run)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measured(cmd: list[str], ok=(0,)) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one run of `cmd`."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            out.seek(0)
            raise SystemExit(f"{cmd[:4]} exited {code}:\n{out.read()[-4000:]}")
    return elapsed, usage.ru_maxrss / 1024


def timed(cmd: list[str], ok=(0,)) -> float:
    return measured(cmd, ok)[0]


def table(sizes: list[int], runs: int) -> None:
    """Issue 11's table: for each N, ours beside the plain scripts, in one run."""
    tool = [sys.executable, "-m", "reconciler"]
    rows = []
    for n in sizes:
        nets = pools = max(1, n // 10)
        cleanup()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.yaml"
            path.write_text(manifests(n, nets, pools))
            docs = Path(tmp) / "docs.json"
            try:
                apply_par = timed(tool + ["apply", str(path), "--auto-approve"])
                plans = [measured(tool + ["plan", str(path)]) for _ in range(runs)]
                reads = [timed([sys.executable, "-c", READ_ONLY], ) for _ in range(runs)]
                split = [json.loads(subprocess.run([sys.executable, "-c", PHASES, str(path)], env=ENV, check=True,
                                                   capture_output=True, text=True).stdout) for _ in range(runs)]
                docs.write_text(json.dumps(snapshot()))
                cleanup()
                define = timed([sys.executable, "-c", DEFINE_ONLY, str(docs)])
                cleanup()
                apply_seq = timed(tool + ["apply", str(path), "--auto-approve", "--parallelism", "1"])
            finally:
                cleanup()
        rows.append((n, apply_par, apply_seq, define, statistics.median(p[0] for p in plans),
                     statistics.median(reads), max(p[1] for p in plans),
                     {k: statistics.median(s[k] for s in split) for k in split[0]}))
    print("| N | apply: ours (parallel) / ours (--parallelism 1) / plain define | "
          "no-op plan: ours / plain read-all | plan peak RSS |")
    print("|---|---|---|---|")
    for n, par, seq, define, plan, read, rss, _ in rows:
        print(f"| {n} | {par:.2f} s / {seq:.2f} s / {define:.2f} s ({seq / define:.2f}x) | "
              f"{plan:.2f} s / {read:.2f} s ({plan / read:.1f}x) | {rss:.0f} MB |")
    print("\nWhere the no-op plan's time goes (in one process, medians; the rest is Python's start and exit):")
    print("| N | import | load (YAML, validation) | observe (libvirt reads) | plan (render, compare) |")
    print("|---|---|---|---|---|")
    for n, *_, split in rows:
        print(f"| {n} | " + " | ".join(f"{split[k]:.2f} s" for k in ("import", "load", "observe", "plan")) + " |")


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--guests", type=int, default=200)
    args.add_argument("--networks", type=int, default=20)
    args.add_argument("--pools", type=int, default=20)
    args.add_argument("--runs", type=int, default=3)
    args.add_argument("--sizes", help="comma-separated N: print issue 11's table instead")
    opts = args.parse_args()
    if opts.sizes:
        table([int(n) for n in opts.sizes.split(",")], opts.runs)
        return
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
