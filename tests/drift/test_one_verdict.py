"""One multi-feature verdict: `drift.compare_features`, the drift service's evaluation of its
windows and `benchwatch drift compare` give the same per-feature verdicts and Holm-adjusted
p-values on the same data (issue 10, item 5); the service keeps evaluating a model's other
features when one feature's test fails, and says so once."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.cli import main
from drift import Baseline, compare_features
from drift.service.engine import DriftService, ServiceConfig
from probes.samples import Sample

Verdicts = dict[tuple[str, str], tuple[bool, float | None]]


def _columns(rng: np.random.Generator, n: int, shift: float, missing: float
             ) -> dict[str, list[Any]]:
    """Four features: one quiet, one barely moved (significant alone, not after Holm), one
    clearly moved, one categorical; `missing` of the last numeric one's values are missing."""
    def numeric(loc: float) -> list[Any]:
        return [float(x) for x in rng.normal(loc, 1.0, n)]

    gappy: list[Any] = numeric(0.0)
    for i in range(int(missing * n)):
        gappy[i] = None
    return {"quiet": numeric(0.0), "nudged": numeric(0.15 * shift), "moved": numeric(shift),
            "colour": [str(c) for c in rng.choice(["red", "green", "blue"], n)],
            "gappy": gappy}


def _write_csv(path: Path, cols: dict[str, list[Any]]) -> Path:
    names = sorted(cols)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in zip(*(cols[k] for k in names), strict=True):
            w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                        for v in row])
    return path


def test_function_service_and_cli_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    rng = np.random.default_rng(2)  # nudged: raw p 0.023, Holm p 0.091
    ref = _columns(rng, 2000, 0.0, 0.0)
    cur = _columns(rng, 800, 1.0, 0.2)

    # 1. the function, on the baseline the service will load
    baseline = Baseline.build("m", "v1", ref)
    direct = compare_features(baseline, cur, alpha=0.05)
    by_function: Verdicts = {(f.feature, f.result.test): (f.detected, f.adjusted_p_value)
                             for f in direct.features}

    # 2. the drift service's evaluation of the same values arriving as samples
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    baseline.save(baselines / "m-v1.json")
    service = DriftService(ServiceConfig(baselines, metrics_port=0, ingest_port=None))
    try:
        report = service.collector.ingest(
            Sample("m", "v1", f"s{i}", 1_700_000_000.0 + i, {k: cur[k][i] for k in cur})
            for i in range(800))
        assert report.accepted == 800, report
        evaluation = service.evaluate()
    finally:
        service.stop()
    by_service: Verdicts = {(f.feature, f.test): (f.detected, f.p_value)
                            for f in evaluation.features}

    # 3. `benchwatch drift compare` on the same values as CSV files
    rc = main(["drift", "compare", str(_write_csv(tmp_path / "ref.csv", ref)),
               str(_write_csv(tmp_path / "cur.csv", cur)), "--json"])
    out = json.loads(capsys.readouterr().out)
    by_cli: Verdicts = {(c["column"], c["test"]): (c["drift"], c["p_value_holm"])
                        for c in out["columns"]}

    assert by_service == by_function
    assert by_cli == by_function
    assert rc == 1 and out["drift"] is True
    # the data exercises what could make them disagree: a moved feature, a missing-rate test,
    # and one whose raw p passes alpha while its Holm-adjusted p does not
    assert {k for k, (d, _) in by_function.items() if d} == {
        ("moved", "wasserstein"), ("gappy", "missing")}
    nudged = direct.get("nudged")
    assert nudged.result.detected and not nudged.detected
    assert by_service[("nudged", "wasserstein")] == (False, nudged.adjusted_p_value)


def test_service_logs_a_failing_test_once_and_evaluates_the_rest(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    Baseline.build("m", "v1", {"x": rng.normal(size=500),
                               "emb": [tuple(v) for v in rng.normal(size=(500, 2))]}
                   ).save(baselines / "m-v1.json")
    service = DriftService(ServiceConfig(baselines, metrics_port=0, ingest_port=None))
    try:
        service.collector.ingest(  # 3-dimensional vectors against a 2-dimensional reference
            Sample("m", "v1", f"s{i}", 1_700_000_000.0 + i,
                   {"x": float(rng.normal()), "emb": (0.0, 1.0, 2.0)}) for i in range(200))
        with caplog.at_level("WARNING", logger="drift.service.engine"):
            first, second = service.evaluate(), service.evaluate()
    finally:
        service.stop()
    for ev in (first, second):
        assert [(f.feature, f.test) for f in ev.features] == [("x", "wasserstein")]
        assert "3 dimensions" in ev.skipped[("m", "v1", "emb")]
    failed = [r for r in caplog.records if "drift test failed" in r.getMessage()]
    assert len(failed) == 1 and "emb" in failed[0].getMessage()
