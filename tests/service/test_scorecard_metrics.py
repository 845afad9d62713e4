"""The drift service exports the baseline's scorecard figures (robustness, cost) and the
configured prices the scorecard's cost rules read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch import promtext
from drift import Baseline, DriftError, Figure
from drift.service.engine import ServiceConfig
from probes import metric_names as m
from tests.service.conftest import reference


def test_robustness_and_cost_figures_and_prices_are_exported(tmp_path: Path,
                                                             start_service: Any) -> None:
    figures = [Figure("flip_rate", 0.0049, "outputs", "tiny_noise"),
               Figure("mce", 1.0, "outputs", "corruptions"),
               Figure("corruption_accuracy", 0.78, "outputs", "gaussian_noise_5"),
               Figure("cost_per_1k_inferences_usd", 7.4e-8, "harness", "offline", 747_300.0)]
    d = tmp_path / "b"
    Baseline.build("digits", "v3", reference(np.random.default_rng(0)), figures,
                   source="test").save(d / "digits-v3.json")
    svc = start_service(d, price_usd_per_hour=0.36, price_usd_per_kwh=0.18)
    s = promtext.read(svc.metrics_url)
    assert s.values(m.BASELINE_FIGURE, figure="flip_rate", point="outputs",
                    scenario="tiny_noise") == [0.0049]
    assert s.values(m.BASELINE_FIGURE, figure="mce") == [1.0]
    assert s.values(m.BASELINE_FIGURE, figure="corruption_accuracy",
                    scenario="gaussian_noise_5") == [0.78]
    assert s.values(m.BASELINE_FIGURE, figure="cost_per_1k_inferences_usd") == [7.4e-8]
    assert s.values(m.PRICE_PER_HOUR) == [0.36] and s.values(m.PRICE_PER_KWH) == [0.18]


def test_no_price_no_price_series_and_bad_prices_refused(tmp_path: Path,
                                                         start_service: Any) -> None:
    d = tmp_path / "b"
    Baseline.build("digits", "v3", reference(np.random.default_rng(0)),
                   source="test").save(d / "digits-v3.json")
    s = promtext.read(start_service(d).metrics_url)
    assert s.values(m.PRICE_PER_HOUR) == [] and s.values(m.PRICE_PER_KWH) == []
    with pytest.raises(DriftError, match="price_usd_per_hour must be a finite number"):
        ServiceConfig(d, metrics_port=0, ingest_port=0, price_usd_per_hour=float("nan"))


def test_labels_that_name_a_slice_give_accuracy_per_slice(baselines: Path,
                                                          start_service: Any) -> None:
    from drift.service.labels import MAX_SLICES, OTHER_SLICE
    from tests.service.conftest import samples

    svc = start_service(baselines)
    batch = samples(120)
    svc.sink().send(batch)
    labels = []
    for i, s in enumerate(batch):
        right = s.outputs["predicted_class"]
        if i < 60:  # slice "a": all right
            labels.append({"sample_id": s.sample_id, "label": right, "slice": "a"})
        elif i < 100:  # slice "b": half right
            labels.append({"sample_id": s.sample_id, "slice": "b",
                           "label": right if i % 2 else "wrong"})
        else:  # no slice named: counted overall only
            labels.append({"sample_id": s.sample_id, "label": right})
    labels.append({"sample_id": batch[0].sample_id, "label": "1", "slice": 7})
    out = svc.labels.receive({"labels": labels})[1]
    assert out["matched"] == 120 and out["rejected"] == {"wrong_type": 1}
    svc.evaluate()
    s = promtext.read(svc.metrics_url)
    assert s.values(m.ACCURACY_REALIZED, model="digits", slice="a") == [1.0]
    assert s.values(m.ACCURACY_REALIZED, model="digits", slice="b") == [0.5]
    assert s.values(m.ACCURACY_LABELS, model="digits", slice="b") == [40.0]
    overall = [v for labels_, v in s.get(m.ACCURACY_REALIZED, model="digits").items()
               if not dict(labels_).get("slice")]  # the exporter writes slice="" (= none)
    assert overall == [pytest.approx(100 / 120)], s.get(m.ACCURACY_REALIZED)  # all labelled
    for k in range(MAX_SLICES + 5):  # bounded: later slices share one
        svc.labels._slice_deque("digits", "v3", f"s{k}").append(True)
    assert len(svc.labels.realized_slices("digits", "v3")) == MAX_SLICES + 1
    assert OTHER_SLICE in svc.labels.realized_slices("digits", "v3")
