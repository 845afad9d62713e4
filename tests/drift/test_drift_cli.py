"""`benchwatch baseline build|show` on real CSV and Parquet files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from benchwatch.cli import main
from drift import Baseline, Figure, compare


def _write_csv(path: Path, n: int = 600) -> None:
    rng = np.random.default_rng(61)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["confidence", "predicted_class", "label", "embedding", "latency"])
        for i in range(n):
            c = float(rng.beta(8, 2))
            p = int(rng.integers(10))
            y = p if rng.random() < c else (p + 1) % 10
            w.writerow([c, p, y, json.dumps([float(rng.normal()), float(rng.normal())]),
                        "" if i % 20 == 0 else float(rng.gamma(2.0))])


def test_build_from_csv_then_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reference.csv"
    _write_csv(src)
    out = tmp_path / "baselines" / "digits-v3.json"
    rc = main(["baseline", "build", "--from", str(src), "--model", "digits", "--version", "v3",
               "-o", str(out), "--label-column", "label", "--kind", "predicted_class=categorical",
               "--figure", "latency_p99_s@model_call/single_stream=0.012",
               "--figure", "latency_p50_s=0.004", "--figure", "accuracy=0.8",
               "--test", "latency=psi"])
    assert rc == 0, capsys.readouterr().err
    b = Baseline.load(out)
    kinds = {k: v.kind for k, v in b.features.items()}
    assert kinds == {"confidence": "numeric", "predicted_class": "categorical",
                     "embedding": "vector", "latency": "numeric"}
    assert b.features["latency"].n_missing == 30
    assert b.figure("latency_p99_s", "model_call") == Figure(
        "latency_p99_s", 0.012, "model_call", "single_stream")
    assert b.figure("accuracy", "outputs").value == 0.8  # type: ignore[union-attr]
    # a figure given without @POINT is kept, but at point unknown: never paired
    assert b.figure("latency_p50_s", "model_call") is None
    assert b.figure("latency_p50_s", "unknown").value == 0.004  # type: ignore[union-attr]
    assert b.calibration is not None and b.provenance.source == str(src)
    assert b.tests == {"latency": "psi"}
    assert not compare(b.reference("confidence"), np.random.default_rng(1).beta(8, 2, 500)).detected
    capsys.readouterr()
    assert main(["baseline", "show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"] == "digits" and shown["features"]["predicted_class"]["categories"] == 10
    assert main(["baseline", "show", str(out)]) == 0
    assert "feature confidence: numeric" in capsys.readouterr().out


def test_build_from_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(62)
    table = pa.table({"value": rng.normal(size=300), "colour": ["red", "blue", "green"] * 100,
                      "vec": [[float(a), float(b)] for a, b in rng.normal(size=(300, 2))]})
    src = tmp_path / "ref.parquet"
    pq.write_table(table, src)
    out = tmp_path / "m-v1.json"
    assert main(["baseline", "build", "--from", str(src), "--model", "m", "--version", "v1",
                 "-o", str(out)]) == 0
    b = Baseline.load(out)
    assert {k: v.kind for k, v in b.features.items()} == {
        "value": "numeric", "colour": "categorical", "vec": "vector"}


def test_bad_input_exits_2_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "reference.csv"
    _write_csv(src, n=50)
    assert main(["baseline", "build", "--from", str(tmp_path / "nope.csv"), "--model", "m",
                 "--version", "v", "-o", str(tmp_path / "x.json")]) == 2
    assert f"benchwatch baseline: error: {tmp_path / 'nope.csv'}: no such file\n" in capsys.readouterr().err
    assert main(["baseline", "build", "--from", str(src), "--model", "m", "--version", "v",
                 "-o", str(tmp_path / "x.json"), "--columns", "confidence,nope"]) == 2
    assert "no column(s) ['nope']" in capsys.readouterr().err
    assert main(["baseline", "build", "--from", str(src), "--model", "m", "--version", "v",
                 "-o", str(tmp_path / "x.json"), "--figure", "accuracy=high"]) == 2
    assert "must be a number" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["baseline", "show", str(bad)]) == 2
    assert "not a benchwatch baseline" in capsys.readouterr().err
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00a,b\n")
    assert main(["baseline", "build", "--from", str(binary), "--model", "m", "--version", "v",
                 "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "not a readable UTF-8 CSV" in err and "Traceback" not in err
