"""What one bad sender can cost the collector, this tree against an earlier commit, side by side
(issue 16, findings 3 and 5).

    .venv/bin/python benchmarks/ingest_limits.py [--ref a7b83be] [--windows 256000] [--repeats 5]

1. A flooded store: a normal 20-sample batch (3 features) into a store file that already holds
   `--windows` windows of junk feature names (what 1 000 samples of 256 new names each made
   before the caps), against the same batch into an empty store. Each round runs one measuring
   subprocess per version, alternating (the earlier commit's `collector/` and `probes/` come
   from `git archive`, read-only), each timing 20 batches; medians over rounds.
2. An 8 MiB body of 2.79 M tiny items (`{}`): this tree's bounded parse (413 at the cap) against what
   the earlier server did with it (json.loads, then Collector.ingest of every item), in one
   process; medians over rounds (the earlier path once per round: it takes tens of seconds).
On a small or shared machine the absolute figures move from run to run: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector_ingest_ab import extract  # noqa: E402 - the same `git archive` of an earlier commit

MEASURE = r"""
import json, shutil, sys, time, uuid
from collector import Collector, WindowStore
source, work = sys.argv[1], sys.argv[2]
shutil.copy(source, work)
store = WindowStore(work)
col = Collector(store)
times = []
for b in range(20):
    batch = [{"model": "digits", "version": "v3", "sample_id": uuid.uuid4().hex,
              "timestamp": 1.7e9, "outputs": {"confidence": 0.5, "predicted_class": "3",
                                              "entropy": 0.2}} for _ in range(20)]
    t0 = time.perf_counter()
    report = col.ingest(batch)
    times.append(time.perf_counter() - t0)
    assert report.accepted == 20, report
store.close()
times.sort()
print(json.dumps({"ms": 1000 * times[len(times) // 2]}))
"""


def make_store(path: Path, junk_windows: int) -> None:
    """A store file (this tree's schema, which the earlier commit shares) holding the model's
    real windows and `junk_windows` junk ones of the same model version."""
    from collector import WindowStore

    with WindowStore(path) as store:
        store.add([("first", "digits", "v3", 1.7e9, {}, {
            "confidence": 0.5, "predicted_class": "3", "entropy": 0.2})])
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO windows (model, version, feature, n) VALUES (?, ?, ?, 1)",
                   (("digits", "v3", f"junk{i}") for i in range(junk_windows)))
    db.commit()
    db.close()


def measure(code: Path, store: Path, work: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(store), str(work)], env=env,
                         cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ms"])


def tiny_items(repeats: int) -> None:
    from collector import Collector, WindowStore
    from collector.http_server import (
        DEFAULT_MAX_BODY,
        DEFAULT_MAX_SAMPLES,
        RequestRefused,
        samples_parser,
    )

    items = 2_790_000  # "{}," each: as many as fit the 8 MiB body limit
    body = b'{"samples":[' + b",".join([b"{}"] * items) + b"]}"
    assert len(body) <= DEFAULT_MAX_BODY
    parse = samples_parser(DEFAULT_MAX_SAMPLES)
    bounded, full = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            parse(body)
        except RequestRefused as e:
            assert e.status == 413
        bounded.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = Collector(WindowStore(None)).ingest(json.loads(body)["samples"])
        full.append(time.perf_counter() - t0)
        assert report.rejected_total == items
    a, b = statistics.median(full), statistics.median(bounded)
    print(f"\n{len(body) / 2**20:.1f} MiB body of {items} empty objects, median of {repeats}:")
    print(f"  json.loads + Collector.ingest (the earlier server): {a:8.2f} s")
    print(f"  this tree: bounded parse, 413 at {DEFAULT_MAX_SAMPLES} samples: {b * 1000:8.1f} ms"
          f"  ({a / b:.0f}x less)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="a7b83be", help="the earlier commit (default: before the "
                    "ingest limits)")
    ap.add_argument("--windows", type=int, default=256_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tiny-repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bw-limits-"))
    old = tmp / "ref"
    old.mkdir()
    extract(args.ref, old)
    stores = {"empty": tmp / "empty.sqlite", "flooded": tmp / "flooded.sqlite"}
    make_store(stores["empty"], 0)
    make_store(stores["flooded"], args.windows)
    ms: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for version, code in (("ref", old), ("tree", ROOT)):
            for kind, path in stores.items():
                ms.setdefault((version, kind), []).append(
                    measure(code, path, tmp / f"work-{version}-{kind}.sqlite"))
    load = os.getloadavg()
    print(f"a 20-sample batch (3 features), median ms of 20 batches, median of {args.repeats} "
          f"alternating rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'store':34} {args.ref + ' ms':>12} {'this tree ms':>13}")
    for kind in stores:
        label = "empty" if kind == "empty" else f"holding {args.windows} junk windows"
        a = statistics.median(ms[("ref", kind)])
        b = statistics.median(ms[("tree", kind)])
        print(f"{label:34} {a:12.2f} {b:13.2f}")
    tiny_items(args.tiny_repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
