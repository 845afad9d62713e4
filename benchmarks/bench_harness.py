"""Harness overhead per query: the runner's timed loop vs calling the backend directly, and vs
`mlperf_loadgen` driving the same null backend (SingleStream). Target: <= 20 µs a query.

    .venv/bin/python benchmarks/bench_harness.py [--queries 50000] [--repeats 7] [--no-loadgen]

Prints a table of medians over repeats: on a small or shared machine single runs are noisy, so
read the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch.bench.backends import NullBackend  # noqa: E402
from benchwatch.bench.runner import query_order, timed_loop  # noqa: E402
from benchwatch.bench.suites import load_suite  # noqa: E402


def direct(predict, rows, order) -> float:  # type: ignore[no-untyped-def]
    idx = order.tolist()
    t0 = time.perf_counter()
    for i in idx:
        predict(rows[i])
    return time.perf_counter() - t0


def harness(predict, rows, order) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    timed_loop(predict, rows, order)
    return time.perf_counter() - t0


def loadgen_single_stream(predict, rows, n: int) -> float:  # type: ignore[no-untyped-def]
    """Wall time per query when mlperf_loadgen issues the queries (SingleStream, perf mode)."""
    import mlperf_loadgen as lg

    def issue(qs):  # type: ignore[no-untyped-def]
        for q in qs:
            predict(rows[q.index])
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in qs])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(rows), len(rows), lambda s: None, lambda s: None)
    s = lg.TestSettings()
    s.scenario = lg.TestScenario.SingleStream
    s.mode = lg.TestMode.PerformanceOnly
    s.min_query_count = n
    s.max_query_count = n
    s.min_duration_ms = 0
    s.single_stream_expected_latency_ns = 1000
    with tempfile.TemporaryDirectory() as d:
        ls = lg.LogSettings()
        ls.log_output.outdir = d
        ls.log_output.copy_summary_to_stdout = False
        ls.enable_trace = False
        t0 = time.perf_counter()
        lg.StartTestWithLogSettings(sut, qsl, s, ls)
        dt = time.perf_counter() - t0
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    return dt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-loadgen", action="store_true")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    suite = load_suite("digits")
    rows = [suite.inputs[i : i + 1] for i in range(len(suite))]
    order = query_order(len(suite), a.queries, 0)
    backend = NullBackend(10, (64,))
    d_runs, h_runs, l_runs = [], [], []
    for _ in range(a.repeats):
        d_runs.append(direct(backend.predict, rows, order) / a.queries)
        h_runs.append(harness(backend.predict, rows, order) / a.queries)
        if not a.no_loadgen:
            l_runs.append(loadgen_single_stream(backend.predict, rows, min(a.queries, 20_000))
                          / min(a.queries, 20_000))
    d, h = statistics.median(d_runs), statistics.median(h_runs)
    figures = {"direct_us": d * 1e6, "harness_us": h * 1e6, "overhead_us": (h - d) * 1e6,
               "ratio": h / d, "queries": a.queries, "repeats": a.repeats,
               "load_avg_1m": os.getloadavg()[0], "target_overhead_us": 20.0}
    print(f"null backend, {a.queries} queries x {a.repeats} repeats (medians); "
          f"load average {figures['load_avg_1m']:.1f} on {os.cpu_count()} CPUs")
    print(f"{'driver':<34}{'µs/query':>10}{'overhead µs':>13}{'ratio':>8}")
    print(f"{'direct call (loop only)':<34}{d * 1e6:>10.3f}{0:>13.3f}{1:>8.2f}")
    print(f"{'benchwatch timed_loop':<34}{h * 1e6:>10.3f}{(h - d) * 1e6:>13.3f}{h / d:>8.2f}")
    if l_runs:
        lg_ = statistics.median(l_runs)
        figures.update(loadgen_us=lg_ * 1e6, loadgen_overhead_us=(lg_ - d) * 1e6)
        print(f"{'mlperf_loadgen SingleStream':<34}{lg_ * 1e6:>10.3f}{(lg_ - d) * 1e6:>13.3f}"
              f"{lg_ / d:>8.2f}")
    verdict = "meets" if figures["overhead_us"] <= 20 else "MISSES"
    print(f"harness overhead {figures['overhead_us']:.3f} µs/query: {verdict} the <= 20 µs target")
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
