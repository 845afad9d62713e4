"""Benchmarks that become baselines, and canary replays.

`suites` (safe suite format, the shipped `digits` suite) · `backends` (torch, onnxruntime, http,
null) · `runner` (LoadGen-like scenarios) · `loadgen_check` (MLPerf LoadGen cross-check) ·
`energy`/`energy_scrape` (energy per inference) · `artifacts` (results, baselines) · `replay` and
`judge` (canary verdicts) · `report` (HTML) · `publish` (verdict gauge, Grafana annotation).
"""
