"""Fairness slices end to end: a real probe with `slice=` -> real Prometheus with the packaged
rules (`for:` 1 s, windows 30 s) -> real Alertmanager -> the drift service's webhook gets the
parity alert for the slice served unlike the others, and none for the slices at parity."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import probes
from benchwatch.rules import rule_files, shorten_for
from benchwatch.services import free_port
from drift import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as m

pytestmark = pytest.mark.prometheus

TOKEN = "slice-token"
ALERT = "BenchwatchSliceSelectionRateDisparity"
# share of class 1 ("approve") per region, and of the traffic: south is served unlike the
# others (overall rate 0.9 x 0.3 + 0.1 x 0.05 = 0.275: north and west at 1.09x, south 0.18x)
POSITIVE_RATE = {"north": 0.3, "west": 0.3, "south": 0.05}
TRAFFIC = [0.45, 0.45, 0.1]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DriftService]:
    rng = np.random.default_rng(0)
    d = tmp_path / "baselines"
    d.mkdir()
    Baseline.build("credit", "v1", {"confidence": rng.uniform(0.5, 1, 500),
                                    "predicted_class": [str(k) for k in rng.integers(0, 2, 500)]},
                   source="slices e2e").save(d / "credit-v1.json")
    svc = DriftService(ServiceConfig(d, metrics_port=0, ingest_port=0, interval_s=1.0,
                                     token=TOKEN)).start()
    yield svc
    svc.stop()


def test_a_slice_served_unlike_the_rest_pages(service: DriftService, prometheus: Any,
                                              alertmanager: Any, tmp_path: Path) -> None:
    am = alertmanager({
        "route": {"receiver": "drift-service", "group_by": ["alertname", "slice"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "drift-service", "webhook_configs": [{
            "url": f"{service.url}/v1/alerts", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}],
    })
    probes.configure("slices-e2e", prometheus_port=free_port(), gpu="off")
    rng = np.random.default_rng(1)

    @probes.probe(model="credit", version="v1", outputs="classifier",
                  slice=lambda row, region: region)
    def predict(row: np.ndarray, region: str) -> np.ndarray:
        p = 0.9 if rng.random() < POSITIVE_RATE[region] else 0.1
        return np.array([[1 - p, p]])

    stop = threading.Event()

    def traffic() -> None:
        regions = np.random.default_rng(2).choice(list(POSITIVE_RATE), size=1_000_000,
                                                  p=TRAFFIC)
        for region in regions:
            if stop.is_set():
                return
            predict(np.zeros((1, 4)), str(region))
            time.sleep(0.002)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        runtime = probes.current()
        assert runtime is not None and runtime.prometheus_url is not None
        target = runtime.prometheus_url.removeprefix("http://").removesuffix("/metrics")
        prom = prometheus({"probe": [target], "drift": [f"127.0.0.1:{service.metrics.port}"]},  # type: ignore[union-attr]
                          rule_files=shorten_for(rule_files(), tmp_path / "rules", "1s", "30s"),
                          alertmanager=am.url)
        deadline = time.monotonic() + 90
        fired: list[Any] = []
        while time.monotonic() < deadline and not fired:
            fired = [a for a in service.alerts.alerts() if a.name == ALERT]
            time.sleep(0.5)
        assert fired, (f"no parity alert at the webhook; Prometheus: {prom.query('ALERTS')}, "
                       f"rates: {prom.query('model_version_slice_class:benchwatch_selection_rate_parity:ratio1h')}")
        assert {a.labels["slice"] for a in fired} == {"south"}
        alert = fired[0]
        assert alert.labels["model"] == "credit" and alert.status == "firing"
        assert "slice south" in alert.annotations["summary"]
        # the probe's series carry the slice; summed over slices they are the model's totals
        per_slice = prom.query(f'sum by (slice) ({m.REQUESTS}{{model="credit", slice!=""}})')
        assert {r["metric"]["slice"] for r in per_slice} == set(POSITIVE_RATE)
        time.sleep(3)  # a few more evaluations: the slices at parity never page
        assert {a.labels["slice"] for a in service.alerts.alerts() if a.name == ALERT} == {"south"}
        assert not prom.query(f'ALERTS{{alertname="{ALERT}", slice=~"north|west"}}')
    finally:
        stop.set()
        t.join(timeout=10)
        probes.shutdown()
