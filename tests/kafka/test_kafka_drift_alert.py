"""Probe -> Kafka -> `benchwatch drift serve --kafka` -> Prometheus rule -> Alertmanager alert.

Real broker, real drift service (a subprocess), real Prometheus and Alertmanager."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.rules import rule_files, shorten_for
from benchwatch.services import free_port
from drift.baseline import Baseline
from probes import metric_names as m

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[2]


def test_drift_served_from_kafka_raises_an_alert(kafka_broker: Any, prometheus: Any,
                                                 alertmanager: Any, tmp_path: Path) -> None:
    import probes

    topic = kafka_broker.topics(partitions=2)
    rng = np.random.default_rng(7)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    Baseline.build("digits", "v9", {"value": rng.normal(0.0, 1.0, 2000)}).save(baselines / "d.json")
    port = free_port()
    log = tmp_path / "drift.log"
    with open(log, "wb") as f:
        service = subprocess.Popen(
            [sys.executable, "-m", "benchwatch", "drift", "serve", "--baselines", str(baselines),
             "--port", str(port), "--ingest-port", "-1", "--interval", "0.5",
             "--kafka", kafka_broker.bootstrap, "--kafka-topic", topic, "--group", "drift"],
            cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        am = alertmanager({"route": {"receiver": "null", "group_wait": "0s"},
                           "receivers": [{"name": "null"}]})
        rules = shorten_for(rule_files(), tmp_path / "rules")
        prom = prometheus({"drift": [f"127.0.0.1:{port}"]}, rule_files=rules, alertmanager=am.url)
        probes.configure("kafka-alert", prometheus_port=0, gpu="off", sample_rate=1.0,
                         sink=f"kafka://{kafka_broker.bootstrap}/{topic}")
        try:
            @probes.probe(model="digits", version="v9", outputs="regression")
            def predict(x: float) -> list[float]:
                return [x]

            for x in rng.normal(1.0, 1.0, 1500):  # a one-sigma shift
                predict(float(x))
        finally:
            probes.shutdown()
        deadline = time.monotonic() + 60
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firing:
            firing = [a for a in am.alerts() if a["labels"].get("alertname") == "BenchwatchFeatureDrift"]
            time.sleep(0.5)
        assert firing, ("no drift alert in Alertmanager; drift service log:\n"
                        + log.read_text(errors="replace")[-3000:]
                        + f"\nprometheus: {prom.query(m.DRIFT_DETECTED)}")
        labels = firing[0]["labels"]
        assert (labels["model"], labels["model_version"], labels["feature"]) == ("digits", "v9", "value")
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    assert service.returncode == 0, log.read_text(errors="replace")[-3000:]
