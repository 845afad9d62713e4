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
