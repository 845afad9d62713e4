"""`baseline build --figures runs/RUN/baseline-http.json`: a reference of your own data with
the figures a bench run measured (docs/own-model.md step 4), each figure kept with its point,
scenario and rate."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from benchwatch.cli import main
from drift import Baseline, Figure

BENCHED = [Figure("latency_p99_s", 0.004, "model_call", "server_20qps", 19.6),
           Figure("latency_p99_s", 0.009, "http_client", "single_stream", 180.0),
           Figure("accuracy", 0.96, "outputs", "accuracy")]


def test_figures_from_a_bench_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    bench = Baseline.build("breast_cancer", "v1", {"confidence": rng.beta(8, 1, 200)}, BENCHED,
                           source="bench").save(tmp_path / "run" / "baseline-http.json")
    src = tmp_path / "reference.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mean_radius", "confidence", "predicted_class", "target"])
        w.writerows([float(rng.normal(14, 3)), float(rng.beta(8, 1)), int(rng.integers(2)),
                     int(rng.integers(2))]
                    for _ in range(400))
    out = tmp_path / "baselines" / "breast_cancer-v1.json"
    rc = main(["baseline", "build", "--from", str(src), "--label-column", "target", "--model",
               "breast_cancer", "--version", "v1", "--figures", str(bench), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    b = Baseline.load(out)
    assert sorted(b.features) == ["confidence", "mean_radius", "predicted_class"]  # the reference's, not the run's
    assert sorted(b.figures, key=str) == sorted(BENCHED, key=str)
    assert b.figure("latency_p99_s", "model_call", rate_qps=20.0) == BENCHED[0]


def test_a_file_without_figures_is_refused(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reference.csv"
    src.write_text("x\n1\n2\n3\n")
    bad = tmp_path / "figures.json"
    bad.write_text('"latency"')
    rc = main(["baseline", "build", "--from", str(src), "--model", "m", "--version", "v1",
               "--figures", str(bad), "-o", str(tmp_path / "m-v1.json")])
    assert rc == 2
    assert "expected a JSON list of figures" in capsys.readouterr().err
