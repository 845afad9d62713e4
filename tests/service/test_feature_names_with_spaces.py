"""Feature names with spaces, end to end: scikit-learn's breast-cancer columns as they come
("mean radius", "worst concave points") through `suite build`, `baseline build`, the probe's
`inputs=`, the drift service and its metrics, and the packaged drift page's description as a
real Prometheus renders it. Feature names are label values (`feature="mean radius"`), which
take any text; model and version names keep the stricter rule (they name files)."""

from __future__ import annotations

import csv
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import probes
from benchwatch import promtext
from benchwatch.cli import main
from benchwatch.rules import rule_files, shorten_for
from benchwatch.services import free_port
from drift import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as m
from probes.summarize import summarize_output
from tests.support.wait import wait_until

pytestmark = pytest.mark.prometheus
sklearn = pytest.importorskip("sklearn")


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def probe_sink_off() -> Iterator[None]:
    yield
    probes.shutdown()


def test_breast_cancer_column_names_end_to_end(tmp_path: Path, prometheus: Any,
                                               probe_sink_off: None) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from benchwatch.bench.suites import load_suite

    data = load_breast_cancer()
    names = [str(n) for n in data.feature_names]  # as scikit-learn names them
    assert "mean radius" in names and "worst concave points" in names
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[:400], y[:400])

    # the user's CSVs: held-out rows for the suite, the training rows with the model's
    # outputs (named as the probe names them) for the drift reference
    _write_csv(tmp_path / "test.csv", [*names, "target"],
               [[*row, int(t)] for row, t in zip(x[400:], y[400:], strict=True)])
    outputs = summarize_output(model.predict_proba(x[:400]), "classifier")
    out_names = list(outputs[0])
    _write_csv(tmp_path / "reference.csv", [*names, *out_names, "target"],
               [[*row, *(o[k] for k in out_names), int(t)]
                for row, o, t in zip(x[:400], outputs, y[:400], strict=True)])
    assert main(["suite", "build", "--from", str(tmp_path / "test.csv"), "--label", "target",
                 "--model", "bc", "--version", "v1", "-o", str(tmp_path / "suites"),
                 "--columns", ",".join(names)]) == 0
    suite = load_suite(tmp_path / "suites" / "bc.json")
    assert suite.metadata["feature_names"] == names and suite.input_shape == (30,)
    baselines = tmp_path / "baselines"
    assert main(["baseline", "build", "--from", str(tmp_path / "reference.csv"),
                 "--label-column", "target", "--model", "bc", "--version", "v1",
                 "--kind", "mean radius=numeric", "-o", str(baselines / "bc-v1.json")]) == 0
    b = Baseline.load(baselines / "bc-v1.json")
    assert set(b.features) == {*names, *out_names}

    svc = DriftService(ServiceConfig(baselines, state_path=tmp_path / "state.sqlite",
                                     metrics_port=0, ingest_port=0, interval_s=3600.0,
                                     min_samples=50)).start()
    try:
        probes.configure("bc-api", prometheus_port=free_port(), sink=svc.sink(),
                         sample_rate=1.0, gpu="off")

        @probes.probe(model="bc", version="v1", outputs="classifier",
                      inputs=lambda batch: [dict(zip(names, map(float, row), strict=True))
                                           for row in batch])
        def predict(batch: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_proba(batch))

        drifted = x[:400] * 1.6  # every input scaled: the tumours grew
        for i in range(0, len(drifted), 20):
            predict(drifted[i : i + 20])
        wait_until(lambda: svc.store.count("bc", "v1", "mean radius") == 400, 30,
                   "400 samples in the 'mean radius' window")
        got = svc.store.values_since("bc", "v1", "worst concave points", 0)[0]
        np.testing.assert_allclose([float(v) for v in got], drifted[:, names.index(
            "worst concave points")])
        ev = svc.evaluate()
        ranked = [f for f in ev.drifted() if f.feature in names]
        assert {"mean radius", "worst area"} <= {f.feature for f in ranked}, ev.drifted()
        scraped = promtext.read(svc.metrics_url)
        assert scraped.values(m.DRIFT_DETECTED, feature="mean radius") == [1.0]

        # the packaged page, rendered by Prometheus from the drift service's own series
        prom = prometheus({"drift": [f"127.0.0.1:{svc.metrics.port}"]},  # type: ignore[union-attr]
                          rule_files=shorten_for(rule_files(), tmp_path / "rules", "1s"))
        page: list[dict[str, Any]] = []

        def paged() -> bool:
            with urllib.request.urlopen(f"{prom.url}/api/v1/alerts", timeout=5) as r:  # noqa: S310
                alerts = json.loads(r.read())["data"]["alerts"]
            page[:] = [a for a in alerts if a["labels"]["alertname"] == "BenchwatchModelDrift"
                       and a["state"] == "firing"]
            return bool(page)

        wait_until(paged, 60, "BenchwatchModelDrift firing in Prometheus")
        description = page[0]["annotations"]["description"]
        listed = description.split("(score / threshold): ", 1)[1].split(". Resolves")[0]
        entries = [e.rsplit(" ", 1) for e in listed.split(", ")]
        assert all(ratio.endswith("x") for _, ratio in entries), description
        listed_names = [name for name, _ in entries]
        assert {"mean radius", "worst area", "worst concave points"} <= set(listed_names), \
            description
        ratios = [float(r.removesuffix("x")) for _, r in entries]
        assert ratios == sorted(ratios, reverse=True), description  # furthest over first
    finally:
        svc.stop()
