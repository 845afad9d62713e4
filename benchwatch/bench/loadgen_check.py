"""Cross-check with MLPerf LoadGen (`mlperf_loadgen`): the same backend and suite driven by
LoadGen's own SingleStream or Server scenario, and LoadGen's own reported figures.

Why LoadGen is a cross-check here and not the engine: it reports summaries (percentiles,
early-stopping estimates) but not each query's latency, which the judge and the CDFs need; its
Python callback path costs ~4 µs a query against ~0.2 µs for our loop (benchmarks/bench_harness.py);
and its validity rules (10 s minimum duration by default) are for submissions, not CI. Running
both and comparing is how we keep our scenarios honest.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.bench.backends import Backend
from benchwatch.bench.suites import Suite
from probes.errors import require

_LINE = re.compile(r':::MLLOG (\{.*\})')


def parse_detail(path: Path) -> dict[str, Any]:
    """`result_*` and `early_stopping_*` entries of mlperf_log_detail.txt as a dict."""
    out: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.search(line)
        if not m:
            continue
        try:
            rec = json.loads(m.group(1))
        except ValueError:
            continue
        key = str(rec.get("key", ""))
        if key.startswith(("result_", "early_stopping_")):
            out[key] = rec.get("value")
    return out


def run_loadgen(backend: Backend, suite: Suite, scenario: str = "SingleStream",
                queries: int = 2000, server_qps: float = 1000.0,
                server_latency_bound_s: float = 0.010, min_duration_s: float = 1.0) -> dict[str, Any]:
    """Run LoadGen in performance mode; return its figures (latencies in seconds)."""
    lg = require("mlperf_loadgen", "bench", "the MLPerf LoadGen cross-check")
    rows = [suite.inputs[i : i + 1] for i in range(len(suite))]

    def issue(qs: Any) -> None:
        responses = []
        for q in qs:
            backend.predict(rows[q.index])
            responses.append(lg.QuerySampleResponse(q.id, 0, 0))
        lg.QuerySamplesComplete(responses)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(rows), len(rows), lambda s: None, lambda s: None)
    s = lg.TestSettings()
    s.mode = lg.TestMode.PerformanceOnly
    s.min_query_count = queries
    s.min_duration_ms = int(min_duration_s * 1000)
    if scenario == "SingleStream":
        s.scenario = lg.TestScenario.SingleStream
        s.max_query_count = queries
        s.single_stream_expected_latency_ns = 10_000
    elif scenario == "Server":
        s.scenario = lg.TestScenario.Server
        s.server_target_qps = server_qps
        s.server_target_latency_ns = int(server_latency_bound_s * 1e9)
    else:
        raise ValueError(f"scenario must be SingleStream or Server, got {scenario!r}")
    try:
        with tempfile.TemporaryDirectory(prefix="benchwatch-loadgen-") as d:
            ls = lg.LogSettings()
            ls.log_output.outdir = d
            ls.log_output.copy_summary_to_stdout = False
            ls.enable_trace = False
            lg.StartTestWithLogSettings(sut, qsl, s, ls)
            raw = parse_detail(Path(d) / "mlperf_log_detail.txt")
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    out: dict[str, Any] = {"scenario": scenario, "queries": raw.get("result_query_count"),
                           "valid": raw.get("result_validity")}
    for q in ("50.00", "90.00", "99.00"):
        v = raw.get(f"result_{q}_percentile_latency_ns")
        out[f"p{q.split('.')[0]}_s"] = None if v is None else float(v) / 1e9
    es = raw.get("early_stopping_latency_ss") or raw.get("early_stopping_latency_ms")
    out["early_stopping_estimate_s"] = None if es is None else float(es) / 1e9
    out["qps"] = raw.get("result_scheduled_samples_per_sec") or raw.get(
        "result_qps_with_loadgen_overhead")
    return out


def compare_with_runner(ours: np.ndarray, loadgen: dict[str, Any]) -> dict[str, float | None]:
    """Ratio LoadGen / ours per percentile (≈ 1 plus LoadGen's per-query overhead)."""
    from benchwatch.bench.stats import quantile

    res: dict[str, float | None] = {}
    for q, key in ((0.5, "p50_s"), (0.9, "p90_s"), (0.99, "p99_s")):
        lg_v = loadgen.get(key)
        mine = quantile(ours, q)
        res[key] = (lg_v / mine) if lg_v and mine > 0 else None
    return res
