"""Benchmark: a fleet of hosts planned and applied in one run, beside the same hosts one at a time.

Usage: .venv/bin/python bench/fleet.py [--hosts 10] [--guests 50] [--runs 3]
Starts --hosts libvirtd of its own (tests.helpers.PrivateDaemon: each in a mount namespace of its
own, answering on its own socket), one Host per daemon with --guests shut-off guests, a qcow2 volume
each, one isolated network (bridge vrtfl<N>) and one dir pool (under the temporary directory).
Issue 11: with hosts in parallel, plan and apply of all hosts take about as long as the slowest
host, not the sum; the apply output ends with one summary line per host. The table shows the
all-hosts apply and no-op plan beside the slowest and the sum of per-host runs (--host hN, one
after another), medians of --runs, and the plan's peak RSS, then the CPU time of the tool and of
the daemons: here all daemons share this machine's CPUs. Each apply starts from empty daemons
(everything on them is removed before: they hold nothing but the benchmark's objects).
Every daemon is warmed first (its capabilities cache is empty: the tool's first getCapabilities
would probe every QEMU binary, seconds); the warm-up is printed, not counted. Daemons, bridges
and files are removed at the end (also on Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import PrivateDaemon  # noqa: E402

TOOL = [sys.executable, "-m", "reconciler"]
INSTANCE = "vrtfleet"
BRIDGE = "vrtfl"            # + N: bridges are kernel-global, so each host's differs

# as an installed tool runs: its modules' bytecode written once and read after (see plan_apply.py)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def manifests(uris: list[str], guests: int, pools: Path) -> str:
    """One Host per daemon, each with its network, pool, and `guests` volumes and guests."""
    docs = []
    for n, uri in enumerate(uris):
        host = f"h{n}"
        docs.append(f'kind: Host\nmetadata: {{name: {host}, labels: {{shard: "{n}"}}}}\n'
                    f'spec: {{uri: "{uri}", instance: {INSTANCE}}}')
        docs.append(f"kind: Network\nmetadata: {{host: {host}, name: fleet-net}}\n"
                    f"spec: {{forward: isolated, bridge: {BRIDGE}{n}, autostart: false}}")
        docs.append(f"kind: StoragePool\nmetadata: {{host: {host}, name: fleet-pool}}\n"
                    f"spec: {{path: {pools / host}, autostart: false}}")
        for g in range(guests):
            docs.append(f"kind: Volume\nmetadata: {{host: {host}, name: g{g}.qcow2}}\n"
                        f"spec: {{pool: fleet-pool, capacity: 16MiB}}")
            docs.append(f"kind: Guest\nmetadata: {{host: {host}, name: fleet-g{g}}}\nspec:\n  state: shutoff\n"
                        f"  vcpus: 1\n  memory: 64MiB\n  disks: [{{volume: fleet-pool/g{g}.qcow2}}]\n"
                        f"  interfaces: [{{network: fleet-net}}]")
    return "\n---\n".join(docs) + "\n"


def warm(daemon: PrivateDaemon) -> float:
    """Seconds of the daemon's first capabilities: every QEMU binary probed into its empty cache
    (the tool reads them when it observes a host; a fresh daemon takes seconds)."""
    conn = libvirt.open(daemon.uri)
    try:
        start = time.perf_counter()
        conn.getCapabilities()
        return time.perf_counter() - start
    finally:
        conn.close()


def fleet(base: Path, hosts: int, guests: int, daemons: list[PrivateDaemon]) -> tuple[Path, list[float]]:
    """Start `hosts` daemons under `base` (added to `daemons` as they start), warm them at once,
    write and validate their manifest; returns its path and the warm-up seconds."""
    for n in range(hosts):
        daemons.append(PrivateDaemon(base / f"d{n}"))
    with ThreadPoolExecutor(hosts) as pool:
        warmup = list(pool.map(warm, daemons))
    path = base / "fleet.yaml"
    path.write_text(manifests([d.uri for d in daemons], guests, base / "pools"))
    run(TOOL + ["validate", str(path)])
    return path, warmup


def halt(daemon: PrivateDaemon) -> None:
    """Stop one daemon, its networks first (a stopped daemon leaves their bridges behind)."""
    try:
        conn = libvirt.open(daemon.uri)
        for net in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
            net.destroy()
        conn.close()
    except libvirt.libvirtError as err:
        print(f"{daemon.uri}: {err}", file=sys.stderr)
    daemon.stop()


def stop(daemons: list[PrivateDaemon]) -> None:
    """Stop the daemons at once (each takes about 2 s), then remove any bridge of ours still there."""
    with ThreadPoolExecutor(max(1, len(daemons))) as pool:
        list(pool.map(halt, daemons))
    for n in range(len(daemons)):
        if Path(f"/sys/class/net/{BRIDGE}{n}").exists():
            subprocess.run(["ip", "link", "del", f"{BRIDGE}{n}"], check=False)
    daemons.clear()


def wipe(daemons: list[PrivateDaemon], pools: Path) -> None:
    """Remove every object on the daemons (ours alone: the benchmark started them) and the pools'
    directories, for an apply from nothing; the capabilities stay cached."""
    for daemon in daemons:
        conn = libvirt.open(daemon.uri)
        for dom in conn.listAllDomains(0):
            dom.undefine()
        for pool in conn.listAllStoragePools(0):
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            pool.destroy()
            pool.undefine()
        for net in conn.listAllNetworks(0):
            net.destroy()
            net.undefine()
        for secret in conn.listAllSecrets(0):        # the instance's ownership records and lock
            secret.undefine()
        conn.close()
    shutil.rmtree(pools, ignore_errors=True)


def run(cmd: list[str], ok=(0,)) -> tuple[float, float, float, str]:
    """(seconds, CPU seconds, peak RSS in MB, output) of one run of `cmd`."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=ENV)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:                   # Ctrl-C: the run ends before its daemons do
            proc.kill()
            proc.wait()
            raise
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd[2:])} exited {code}:\n{text[-4000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def daemons_cpu(daemons: list[PrivateDaemon]) -> float:
    """CPU seconds the daemons used so far, with their children's (qemu-img) that ended."""
    ticks = 0
    for daemon in daemons:
        fields = Path(f"/proc/{daemon.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += sum(int(f) for f in fields[11:15])      # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def per_host(path: Path, command: list[str], hosts: int, runs: int, reset=lambda: None) -> list[float]:
    """Median seconds of `command --host hN` for each host, one host after another (`reset` before
    each round of hosts)."""
    rounds = []
    for _ in range(runs):
        reset()
        rounds.append([run(TOOL + command + [str(path), "--host", f"h{n}"])[0] for n in range(hosts)])
    return [statistics.median(times) for times in zip(*rounds)]


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--hosts", type=int, default=10)
    args.add_argument("--guests", type=int, default=50, help="guests per host")
    args.add_argument("--runs", type=int, default=3, help="runs of each measure (median)")
    opts = args.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)      # cleaned up as on Ctrl-C
    apply = ["apply", "--auto-approve"]
    tmp = Path(tempfile.mkdtemp(prefix="vrtfleet-", dir="/var/tmp"))
    daemons: list[PrivateDaemon] = []
    try:
        path, warmup = fleet(tmp, opts.hosts, opts.guests, daemons)
        applies = []                            # (seconds, tool CPU, daemons' CPU)
        for _ in range(opts.runs):
            wipe(daemons, tmp / "pools")
            served = daemons_cpu(daemons)
            seconds, cpu, _, out = run(TOOL + apply + [str(path)])
            applies.append((seconds, cpu, daemons_cpu(daemons) - served))
            summaries = [line for line in out.splitlines() if line.startswith("  h") and " done, " in line]
            expected = {f"  h{n}: {2 * opts.guests + 2} done, 0 failed, 0 skipped" for n in range(opts.hosts)}
            if set(summaries) != expected:
                raise SystemExit(f"not one summary line per host with every action done:\n{out[-3000:]}")
        plans = [run(TOOL + ["plan", str(path)]) for _ in range(opts.runs)]
        plan_hosts = per_host(path, ["plan"], opts.hosts, opts.runs)
        apply_hosts = per_host(path, apply, opts.hosts, opts.runs, lambda: wipe(daemons, tmp / "pools"))
    finally:
        stop(daemons)
        shutil.rmtree(tmp, ignore_errors=True)
    apply_all, apply_cpu, served = (statistics.median(a[i] for a in applies) for i in range(3))
    plan_all, plan_cpu = (statistics.median(p[i] for p in plans) for i in range(2))
    print(f"{opts.hosts} private libvirtd, {opts.guests} guests per host ({2 * opts.guests + 2} objects), "
          f"{os.cpu_count()} CPUs; capabilities warm-up (all daemons at once, not counted): {max(warmup):.1f} s")
    print("apply summary, all hosts:\n" + "\n".join(summaries))
    print("| hosts | guests/host | apply: all hosts / slowest host / sum of hosts | "
          "no-op plan: all hosts / slowest host / sum of hosts | plan peak RSS |")
    print("|---|---|---|---|---|")
    print(f"| {opts.hosts} | {opts.guests} | {apply_all:.2f} s / {max(apply_hosts):.2f} s / {sum(apply_hosts):.2f} s | "
          f"{plan_all:.2f} s / {max(plan_hosts):.2f} s / {sum(plan_hosts):.2f} s | {max(p[2] for p in plans):.0f} MB |")
    print(f"CPU of the all-hosts apply: tool {apply_cpu:.2f} s, daemons {served:.2f} s; "
          f"of the all-hosts plan: tool {plan_cpu:.2f} s (medians)")


if __name__ == "__main__":
    main()
