"""Long fuzz run of the loader and validator (what `virt-reconcile validate` does), in child
processes so that crashes, hangs and memory are seen as a user would see them.

    .venv/bin/python bench/fuzz_manifests.py [--docs 5000] [--seed 1] [--timeout 10]

Documents are the seed manifests (examples/, tests/data/manifests/) mutated with the pieces in
tests/unit/test_fuzz_loader.py (anchors, aliases, tags, nesting, control characters, huge
numbers, encodings...) plus generated extremes (alias bombs, deep nesting, UTF-16/32, binary).
Each ends as: valid, error (every problem with file and line), error-without-line, traceback
(any other exception), hang (no answer within --timeout s) or crash (the process died).
Prints the counts, the slowest document and the peak RSS of a worker process."""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.unit.test_fuzz_loader import HOST, SEEDS, TOKENS  # noqa: E402

WORKER = r"""
import json, resource, sys, time, traceback
from pathlib import Path
from reconciler import pipeline
from reconciler.errors import ManifestError
for line in sys.stdin:
    path = Path(line.strip())
    start = time.perf_counter()
    try:
        pipeline.load([path])
        status = "valid"
    except ManifestError as exc:
        # every problem names the file, and its line (a file over the size limit has none)
        ok = all(d.file == str(path) and (d.line is not None or "the limit for one manifest file" in d.message)
                 for d in exc.diagnostics)
        status = "error" if ok and exc.diagnostics else "error-without-line"
    except BaseException:
        status = "traceback:" + traceback.format_exc().strip().splitlines()[-1][:200]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps([path.name, status, time.perf_counter() - start, rss]), flush=True)
"""


def mutate(rng: random.Random) -> bytes:
    doc = bytearray(HOST + rng.choice(SEEDS))
    for _ in range(rng.randint(1, 8)):
        pos = rng.randint(0, len(doc))
        op = rng.choice(["insert", "insert", "delete", "flip", "repeat"])
        if op == "insert":
            doc[pos:pos] = rng.choice(TOKENS)
        elif op == "delete":
            del doc[pos:pos + rng.randint(1, 40)]
        elif op == "flip" and pos < len(doc):
            doc[pos] = rng.randint(0, 255)
        elif op == "repeat":
            doc[pos:pos] = bytes(doc[pos:pos + rng.randint(1, 60)]) * rng.randint(2, 50)
    return bytes(doc)


def extremes() -> list[bytes]:
    """Inputs that broke the loader before, at growing sizes."""
    out = []
    for depth in (10, 63, 64, 65, 1000, 50_000, 200_000):
        out.append(b"a: " + b"[" * depth + b"]" * depth + b"\n")
        out.append(b"".join(b"  " * i + b"k:\n" for i in range(min(depth, 5000))))
        out.append(b"a: " + b"{b: " * depth + b"1" + b"}" * depth + b"\n")
    for width, levels in ((10, 9), (100, 5), (2, 60), (1000, 3)):
        text = "a0: &a0 [x]\n" + "".join(f"a{n}: &a{n} [{', '.join(['*a' + str(n - 1)] * width)}]\n"
                                         for n in range(1, levels + 1))
        out.append(text.encode())
    body = HOST + SEEDS[0]
    out += [body.decode().encode(enc) for enc in ("utf-16", "utf-16-le", "utf-32", "utf-32-be")]
    out += [b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n" + bytes(200), bytes(1000)]
    out += [b"a: " + b"9" * n + b"\n" for n in (19, 20, 40, 41, 4300, 5000, 100_000)]
    out += [b"--- !!str\n", b"a: !!bool maybe\n", b'a: !!float "x"\n', b"a: !!python/name:os.system\n",
            b"&a a: *a\n", b"a: &a [*a]\n", b"? " * 1000 + b"x", b"- " * 10_000 + b"x"]
    return out


def run(paths: list[Path], timeout: float) -> tuple[Counter, list, tuple, tuple]:
    """Feed `paths` to worker processes; a worker that dies or hangs is replaced. Returns counts,
    bad documents, the slowest one, and (peak RSS, RSS after a worker's first document) in KiB."""
    counts, bad, slowest, peak, base = Counter(), [], (0.0, ""), 0, None
    todo = list(paths)
    while todo:
        proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        batch, todo = todo[:200], todo[200:]
        proc.stdin.write("".join(f"{p}\n" for p in batch))
        proc.stdin.close()
        done = 0
        for path in batch:
            line = _readline(proc, timeout)
            if line is None:                       # hang or crash: this document is the culprit
                proc.kill()
                proc.wait()
                status = "hang" if proc.returncode == -9 else f"crash (signal {-proc.returncode})"
                counts[status.split()[0]] += 1
                bad.append((path.name, status))
                todo = batch[done + 1:] + todo
                break
            name, status, seconds, rss = json.loads(line)
            done += 1
            counts[status.split(":")[0]] += 1
            if status.startswith(("traceback", "error-without-line")):
                bad.append((name, status))
            slowest = max(slowest, (seconds, name))
            peak = max(peak, rss)
            base = rss if done == 1 and base is None else base
        proc.wait()
    return counts, bad, slowest, (peak, base or 0)


def _readline(proc, timeout: float) -> str | None:
    import select
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    return line or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000, help="mutated documents (plus the extremes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a document counts as a hang")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="vr-fuzz-") as tmp:
        paths = []
        for n, raw in enumerate([mutate(rng) for _ in range(args.docs)] + extremes()):
            path = Path(tmp) / f"doc{n:05d}.yaml"
            path.write_bytes(raw)
            paths.append(path)
        started = time.monotonic()
        counts, bad, slowest, peak = run(paths, args.timeout)
        elapsed = time.monotonic() - started
    print(f"documents: {len(paths)} ({args.docs} mutated, {len(paths) - args.docs} extremes), seed {args.seed}, "
          f"{elapsed:.1f} s")
    for status in ("valid", "error", "error-without-line", "traceback", "hang", "crash"):
        print(f"  {status:20} {counts.get(status, 0)}")
    print(f"slowest document: {slowest[1]} {slowest[0] * 1000:.1f} ms; peak RSS of a worker: {peak[0] / 1024:.1f} MiB "
          f"({(peak[0] - peak[1]) / 1024:.1f} MiB above its RSS after its first document)")
    for name, status in bad[:20]:
        print(f"  {name}: {status}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
