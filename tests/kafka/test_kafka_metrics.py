"""The drift service exports its Kafka consumer's stats (lag, poison, commits, restores) on its
Prometheus endpoint: a real broker, a real DriftService, a real scrape."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from benchwatch.services import free_port
from collector.kafka.consumer import KafkaIngestor
from drift.baseline import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes.samples import Sample
from probes.sinks.kafka_wire import encode_batch

pytestmark = pytest.mark.kafka


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(series name, sorted labels): value} of the kafka consumer and ingest series."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(("benchwatch_kafka_consumer_", "benchwatch_ingest_samples")):
                labels = tuple(sorted((k, v) for k, v in s.labels.items()
                                      if not k.startswith("otel_scope")))
                out[(s.name, labels)] = s.value
    return out


def test_drift_service_exports_the_kafka_consumers_stats(kafka_broker: Any, tmp_path: Path) -> None:
    topic = kafka_broker.topics(partitions=1)
    good = [Sample.new("digits", "v3", {"confidence": i / 10}) for i in range(10)]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for value in (encode_batch("digits", "v3", good[:5]), b"\x80\x04pickle?", b"BW\x07{}",
                  encode_batch("digits", "v3", good[5:])):
        producer.send(topic, key=b"digits/v3", value=value)
    producer.flush()
    producer.close()

    baselines = tmp_path / "baselines"
    baselines.mkdir()
    Baseline.build("digits", "v3", {"confidence": [i / 100 for i in range(100)]}).save(
        baselines / "digits-v3.json")
    service = DriftService(ServiceConfig(baselines, metrics_port=free_port(), ingest_port=None,
                                         interval_s=3600)).start()
    stop = threading.Event()
    thread = None
    try:
        # no consumer yet: no Kafka series at all (not zeros that would look like a healthy one)
        assert not [k for k in scrape(str(service.metrics_url))
                    if k[0].startswith("benchwatch_kafka_consumer_")]
        service.kafka = KafkaIngestor(service.collector, kafka_broker.bootstrap, topic, "drift",
                                      commit_interval_s=0.3)
        thread = threading.Thread(target=service.kafka.run, args=(stop,), daemon=True)
        thread.start()
        wait_until(lambda: service.kafka.stats().records == 4
                   and service.kafka.stats().commits > 0 and service.kafka.stats().lag == 0,
                   30, "4 records read, committed, lag 0")
        got = scrape(str(service.metrics_url))
        assert got[("benchwatch_kafka_consumer_lag", ())] == 0, got
        assert got[("benchwatch_kafka_consumer_poison_total", (("reason", "not_benchwatch"),))] == 1
        assert got[("benchwatch_kafka_consumer_poison_total", (("reason", "unknown_version"),))] == 1
        assert got[("benchwatch_kafka_consumer_commit_failures_total", ())] == 0
        assert got[("benchwatch_kafka_consumer_restored_models_total", ())] == 0
        assert got[("benchwatch_kafka_consumer_records_total", ())] == 4
        assert got[("benchwatch_kafka_consumer_commits_total", ())] >= 1
        assert got[("benchwatch_ingest_samples_total",
                    (("outcome", "accepted"), ("reason", "")))] == 10
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        service.stop()
    assert thread is not None and not thread.is_alive()
