"""Helpers for the drift-service tests: real baselines on disk, services on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drift import Baseline
from drift.calibration import Calibration
from drift.service.engine import DriftService, ServiceConfig
from probes.samples import Sample

FIGURES = {"latency_p50_s": 0.004, "latency_p90_s": 0.008, "latency_p99_s": 0.02,
           "accuracy": 0.97, "energy_per_inference_j": 0.3}


def reference(rng: np.random.Generator, n: int = 5000) -> dict[str, Any]:
    return {"confidence": rng.beta(8, 1, n),
            "predicted_class": [str(k) for k in rng.integers(0, 10, n)]}


def build_baseline(directory: Path, model: str = "digits", version: str = "v3",
                   seed: int = 0, calibrated: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    feats = reference(rng)
    calibration = None
    if calibrated:
        conf = feats["confidence"]
        calibration = Calibration.fit(conf, rng.random(conf.size) < conf)
    return Baseline.build(model, version, feats, FIGURES, source="test",
                          calibration=calibration).save(directory / f"{model}-{version}.json")


def samples(n: int, shift: bool = False, seed: int = 1, model: str = "digits",
            version: str = "v3", prefix: str = "s") -> list[Sample]:
    rng = np.random.default_rng(seed)
    conf = rng.beta(3, 1, n) if shift else rng.beta(8, 1, n)
    cls = rng.integers(0, 10, n)
    return [Sample(model, version, f"{prefix}{i}", 1_700_000_000.0 + i,
                   {"confidence": float(c), "predicted_class": str(k)})
            for i, (c, k) in enumerate(zip(conf, cls, strict=True))]


@pytest.fixture
def baselines(tmp_path: Path) -> Path:
    d = tmp_path / "baselines"
    d.mkdir()
    build_baseline(d, calibrated=True)
    return d


@pytest.fixture
def start_service() -> Iterator[Callable[..., DriftService]]:
    started: list[DriftService] = []

    def start(baselines_dir: Path, **kw: Any) -> DriftService:
        kw.setdefault("metrics_port", 0)
        kw.setdefault("ingest_port", 0)
        kw.setdefault("interval_s", 3600.0)  # tests call evaluate() themselves
        kw.setdefault("min_samples", 50)
        svc = DriftService(ServiceConfig(baselines_dir, **kw)).start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
