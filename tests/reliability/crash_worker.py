"""A serving-side process for the crash test: the drift service on the embedded transport.

Runs the real `DriftService` (SQLite WAL spool, evaluator thread every 0.2 s) and feeds its
in-process sink numbered batches from `--first` on, printing `ack N` after each batch the sink
accepted (the pipe keeps what was printed even when this process is killed with -9).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from drift.service.engine import DriftService, ServiceConfig
from probes.samples import Sample

BATCH = 25


def batch(i: int) -> list[Sample]:
    rng = np.random.default_rng(i)
    conf = rng.beta(8, 1, BATCH)
    cls = rng.integers(0, 10, BATCH)
    return [Sample("digits", "v3", f"b{i}-{j}", 1_700_000_000.0 + i, {
        "confidence": float(c), "predicted_class": str(k)})
        for j, (c, k) in enumerate(zip(conf, cls, strict=True))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--baselines", type=Path, required=True)
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--last", type=int, default=10**9)
    a = p.parse_args()
    svc = DriftService(ServiceConfig(a.baselines, state_path=a.state, metrics_port=0,
                                     ingest_port=None, interval_s=0.2, min_samples=50,
                                     max_per_feature=100_000)).start()
    sink = svc.sink()
    print("ready", flush=True)
    for i in range(a.first, a.last + 1):
        sink.send(batch(i))
        r = sink.last_report
        assert r is not None
        print(f"ack {i} {r.accepted} {r.duplicates}", flush=True)
    svc.stop()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
