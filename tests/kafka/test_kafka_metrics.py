"""The drift service exports its Kafka consumer's stats (lag, poison, commits, restores) on its
Prometheus endpoint: a real broker, a real DriftService, a real scrape."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from benchwatch import promtext
from benchwatch.services import free_port
from collector.kafka.consumer import KafkaIngestor
from drift.baseline import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as m
from probes.samples import Sample
from probes.sinks.kafka_wire import encode_batch
from tests.support.wait import wait_until

pytestmark = pytest.mark.kafka


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
        assert not [n for n in promtext.read(str(service.metrics_url), timeout_s=10).series
                    if n.startswith(m.KAFKA_PREFIX)]
        service.kafka = KafkaIngestor(service.collector, kafka_broker.bootstrap, topic,
                                      f"drift-{topic}", commit_interval_s=0.3,
                                      ownership_check_s=0.3)
        thread = threading.Thread(target=service.kafka.run, args=(stop,), daemon=True)
        thread.start()
        wait_until(lambda: service.kafka.stats().records == 4
                   and service.kafka.stats().commits > 0 and service.kafka.stats().lag == 0
                   and service.kafka.stats().group_unowned == 0,
                   30, "4 records read, committed, lag 0, the group owning its partition")
        got = promtext.read(str(service.metrics_url), timeout_s=10)
        assert got.values(m.KAFKA_LAG) == [0], got.series
        assert got.values(m.KAFKA_POISON, reason="not_benchwatch") == [1]
        assert got.values(m.KAFKA_POISON, reason="unknown_version") == [1]
        assert got.values(m.KAFKA_COMMIT_FAILURES) == [0]
        assert got.values(m.KAFKA_RESTORED_MODELS) == [0]
        assert got.values(m.KAFKA_RECORDS) == [4]
        assert got.values(m.KAFKA_RESTARTS) == [0]
        assert got.values(m.KAFKA_ASSIGNED) == [1]
        assert got.values(m.KAFKA_GROUP_UNOWNED) == [0]
        assert got.values(m.KAFKA_REJOINS) == [0]
        [commits] = got.values(m.KAFKA_COMMITS)
        assert commits >= 1
        assert got.values(m.KAFKA_REBALANCES) != []
        assert got.values(m.INGEST, outcome="accepted", reason="") == [10]
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        service.stop()
    assert thread is not None and not thread.is_alive()
