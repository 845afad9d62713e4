"""The important one: a real probed function -> the drift service (in-process sink) -> real
Prometheus scraping it with deploy/prometheus rules -> real Alertmanager -> the drift service's
own webhook receiver gets the alert, with model, feature and score. `for:` durations are
shortened to 1 s (benchwatch.rules.shorten_for) so it runs in seconds."""

from __future__ import annotations

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
from probes.summarize import summarize_output

pytestmark = pytest.mark.prometheus

TOKEN = "e2e-token"


def class_probs(rng: np.random.Generator, n: int, sharpness: float) -> np.ndarray:
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), rng.integers(0, 10, n)] += sharpness
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DriftService]:
    rng = np.random.default_rng(0)
    rows = summarize_output(class_probs(rng, 3000, sharpness=6.0), "classifier")
    features = {name: [r[name] for r in rows] for name in rows[0]}
    d = tmp_path / "baselines"
    d.mkdir()
    Baseline.build("digits", "v3", features, {"latency_p99_s": 0.5}, source="e2e").save(
        d / "digits-v3.json")
    svc = DriftService(ServiceConfig(d, state_path=tmp_path / "state.sqlite", metrics_port=0,
                                     ingest_port=0, interval_s=0.5, min_samples=100,
                                     token=TOKEN)).start()
    yield svc
    svc.stop()


@pytest.fixture
def probed(service: DriftService) -> Iterator[Any]:
    probes.configure("e2e-model", prometheus_port=free_port(), sink=service.sink(),
                     sample_rate=1.0, gpu="off")
    drifted = {"on": False}
    rng = np.random.default_rng(1)

    @probes.probe(model="digits", version="v3", outputs="classifier")
    def predict(batch: np.ndarray) -> np.ndarray:
        # the same model; its inputs drift, so it is far less sure of itself
        return class_probs(rng, len(batch), sharpness=1.0 if drifted["on"] else 6.0)

    predict.drifted = drifted  # type: ignore[attr-defined]
    yield predict
    probes.shutdown()


def test_drift_reaches_the_webhook_through_prometheus_and_alertmanager(
        service: DriftService, probed: Any, prometheus: Any, alertmanager: Any,
        tmp_path: Path) -> None:
    am = alertmanager({
        "route": {"receiver": "drift-service", "group_by": ["alertname", "feature"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "drift-service", "webhook_configs": [{
            "url": f"{service.url}/v1/alerts", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}],
    })
    runtime = probes.current()
    assert runtime is not None and runtime.prometheus_url is not None
    probe_target = runtime.prometheus_url.removeprefix("http://").removesuffix("/metrics")
    drift_target = f"127.0.0.1:{service.metrics.port}"  # type: ignore[union-attr]
    prom = prometheus({"drift": [drift_target], "probe": [probe_target]},
                      rule_files=shorten_for(rule_files(), tmp_path / "rules", "1s", "30s"),
                      alertmanager=am.url)

    for _ in range(30):  # clean traffic first: no drift
        probed(np.zeros((10, 64)))
    deadline = time.monotonic() + 20  # the probe's sample queue drains every second
    while service.store.count("digits", "v3", "confidence") < 300 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.store.count("digits", "v3", "confidence") == 300
    assert not service.evaluate().drifted()

    probed.drifted["on"] = True
    started = time.monotonic()
    for _ in range(60):
        probed(np.zeros((10, 64)))
    deadline = started + 45
    fired = []
    while time.monotonic() < deadline and not fired:
        fired = [a for a in service.alerts.alerts()
                 if a.name == "BenchwatchFeatureDrift" and a.status == "firing"]
        time.sleep(0.25)
    assert fired, ("no drift alert reached the webhook; Prometheus alerts: "
                   f"{prom.query('ALERTS')}, Alertmanager: {am.alerts()}, "
                   f"drift status: {service.status()['features']}")
    took = time.monotonic() - started
    alert = next(a for a in fired if a.labels.get("feature") == "confidence")
    assert alert.labels["model"] == "digits" and alert.labels["model_version"] == "v3"
    score = float(alert.annotations["score"])
    threshold = float(alert.annotations["threshold"])
    assert score > threshold > 0
    assert alert.annotations["since"], alert.annotations
    assert "digits v3: feature confidence drifted" in alert.annotations["summary"]
    # the same story in Prometheus: the probe's own series and the drift gauges side by side
    assert prom.query(f'{m.DRIFT_DETECTED}{{feature="confidence"}} == 1')
    assert prom.query(f'{m.REQUESTS}{{model="digits"}}')
    assert prom.query(f'{m.BASELINE_FIGURE}{{figure="latency_p99_s"}}')
    assert took < 45
    print(f"drift -> webhook in {took:.1f} s")
