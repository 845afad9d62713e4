"""Collector.ingest cost per sample: this tree against an earlier commit, side by side.

    .venv/bin/python benchmarks/collector_ingest_ab.py [--ref 6380a11] [--samples 20000] [--repeats 5]

The earlier commit's `collector/` and `probes/` are extracted with `git archive` (read-only) into
a temporary directory; each round runs one measuring subprocess per version, alternating, so
load from other workers on this shared machine hits both alike. Each subprocess ingests the
same samples (3 features like the digits classifier's, batches of 256, WAL synchronous=NORMAL on
a file) as `Sample` objects (the in-process sink) and as dicts (what HTTP and Kafka decode to),
and times only `Collector.ingest` (sample generation is not counted). Medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
from collector import Collector, WindowStore
from probes.samples import Sample
n, batch, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
conf, cls, ent = rng.beta(8, 1, n), rng.integers(0, 10, n), rng.exponential(0.3, n)
objs = [Sample("digits", "v3", f"s{seed}-{i}", 1.7e9 + i,
               {"confidence": float(c), "predicted_class": str(k), "entropy": float(e)})
        for i, (c, k, e) in enumerate(zip(conf, cls, ent))]
out = {}
tmp = Path(tempfile.mkdtemp(prefix="bw-ab-"))
for kind, data in (("objects", objs), ("dicts", [s.to_dict() for s in objs])):
    store = WindowStore(tmp / f"{kind}.sqlite")
    col = Collector(store, schema=lambda m, v: ("confidence", "predicted_class", "entropy"))
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        col.ingest(data[i:i + batch])
    dt = time.perf_counter() - t0
    assert col.totals().accepted == n, col.totals()
    store.close()
    out[kind] = dt / n * 1e6
print(json.dumps(out))
"""


def extract(ref: str, into: Path) -> None:
    archive = into / "ref.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", ref, "collector", "probes"], cwd=ROOT, stdout=f,
                       check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def measure(path: Path, n: int, batch: int, seed: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(n), str(batch), str(seed)],
                         env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="6380a11", help="the earlier commit (default: before the "
                    "ingest speed-up)")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    old = Path(tempfile.mkdtemp(prefix="bw-ab-ref-"))
    extract(args.ref, old)
    results: dict[str, dict[str, list[float]]] = {"ref": {}, "tree": {}}
    for r in range(args.repeats):
        for name, path in (("ref", old), ("tree", ROOT)):
            for kind, us in measure(path, args.samples, args.batch, r).items():
                results[name].setdefault(kind, []).append(us)
    load = os.getloadavg()
    print(f"Collector.ingest, {args.samples} samples x 3 features, batches of {args.batch}, "
          f"WAL NORMAL file; median of {args.repeats} alternating rounds; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores)")
    print(f"{'input':10} {args.ref + ' µs/sample':>18} {'this tree µs/sample':>20} {'speed-up':>9}")
    for kind in results["tree"]:
        a = statistics.median(results["ref"][kind])
        b = statistics.median(results["tree"][kind])
        print(f"{kind:10} {a:18.2f} {b:20.2f} {a / b:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
