"""Benchmarks that become baselines, and canary replays.

`suites` (safe suite format, the shipped `digits` suite) · `backends` (torch, onnxruntime, http,
null) · `runner` (LoadGen-like scenarios) · `loadgen_check` (MLPerf LoadGen cross-check) ·
`energy`/`energy_scrape` (energy per inference) · `artifacts` (results, baselines) · `replay` and
`judge` (canary verdicts) · `report` (HTML) · `publish` (verdict gauge, Grafana annotation) ·
`http_mapping` (your endpoint's JSON) · `inprocess` (`bench_callable`: bench a Python callable).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "bench_callable":  # imported on first use: `import benchwatch.bench.suites` stays light
        from benchwatch.bench.inprocess import bench_callable

        return bench_callable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
