"""Probe -> Kafka -> consumer group -> windows -> drift, on a real broker (scripts/kafka.sh)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from collector import Collector, WindowStore
from collector.kafka.consumer import KafkaIngestor
from probes.samples import Sample
from probes.sinks.kafka import KafkaSink
from probes.sinks.kafka_wire import encode_batch
from tests.support.kafka_worker import IngestorThread, running
from tests.support.wait import wait_until

pytestmark = pytest.mark.kafka


class Worker(IngestorThread):
    def __init__(self, bootstrap: str, topic: str, group: str, store: WindowStore) -> None:
        self.store = store
        super().__init__(KafkaIngestor(Collector(store), bootstrap, topic, group,
                                       state_topic=f"{topic}.window-state",
                                       dead_letter_topic=f"{topic}.dead-letter",
                                       commit_interval_s=0.5))


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    with running(Worker) as start:
        yield start


def test_probe_to_kafka_to_windows_to_drift(kafka_broker: Any, workers: Any) -> None:
    import probes
    from drift import compare

    topic = kafka_broker.topics()
    store = WindowStore(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", store)
    probes.configure("kafka-e2e", prometheus_port=0, sink=f"kafka://{kafka_broker.bootstrap}/{topic}",
                     sample_rate=1.0, gpu="off")
    try:
        shift = {"v1": 0.0, "v2": 0.3}

        def make(version: str) -> Callable[[int], list[float]]:
            @probes.probe(model="digits", version=version, outputs="regression")
            def predict(i: int) -> list[float]:
                return [((i * 7919) % 1000) / 1000 * 0.5 + shift[version]]
            return predict

        for version in ("v1", "v2"):
            predict = make(version)
            for i in range(600):
                predict(i)
    finally:
        probes.shutdown()  # flushes the queue into the sink and closes it (delivers)
    wait_until(lambda: worker.stats().accepted >= 1200, 30, "1200 samples in the windows")
    v1 = store.values("digits", "v1", "value")
    v2 = store.values("digits", "v2", "value")
    assert len(v1) == len(v2) == 600
    assert not compare(v1[:300], v1[300:]).detected
    assert compare(v1, v2).detected
    wait_until(lambda: worker.stats().commits > 0 and worker.stats().lag == 0, 10, "a commit")
    assert worker.stats().duplicates == 0


def test_poison_records_are_skipped_counted_and_dead_lettered(kafka_broker: Any, workers: Any) -> None:
    topic = kafka_broker.topics(partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    good = [Sample.new("digits", "v3", {"confidence": i / 10}) for i in range(10)]
    for value in (encode_batch("digits", "v3", good[:5]), b"\x80\x04pickle?", b"BW\x07{}",
                  b"BW\x01{broken", encode_batch("digits", "v3", good[5:])):
        producer.send(topic, key=b"digits/v3", value=value)
    producer.flush()
    producer.close()
    store = WindowStore(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", store)
    wait_until(lambda: worker.stats().records == 5, 30, "all 5 records read")
    stats = worker.stats()
    assert stats.accepted == 10
    assert dict(stats.poison) == {"not_benchwatch": 1, "unknown_version": 1, "bad_json": 1}
    assert len(store.values("digits", "v3", "confidence")) == 10
    wait_until(lambda: worker.stats().commits > 0, 10, "a commit past the poison")
    dlq = KafkaConsumer(f"{topic}.dead-letter", bootstrap_servers=kafka_broker.bootstrap,
                        auto_offset_reset="earliest", consumer_timeout_ms=5000, group_id=None)
    dead = list(dlq)
    dlq.close()
    assert sorted(r.value for r in dead) == sorted([b"\x80\x04pickle?", b"BW\x07{}", b"BW\x01{broken"])
    assert {dict(r.headers)["benchwatch-error"] for r in dead} == {
        b"not_benchwatch", b"unknown_version", b"bad_json"}


def test_broker_restart_mid_stream_loses_no_acknowledged_sample(kafka_broker: Any, workers: Any) -> None:
    topic = kafka_broker.topics(partitions=3)
    acked: set[str] = set()
    lock = threading.Lock()

    def on_delivery(chunk: Any, error: BaseException | None) -> None:
        if error is None:
            with lock:
                acked.update(s.sample_id for s in chunk)

    sink = KafkaSink(f"kafka://{kafka_broker.bootstrap}/{topic}", on_delivery=on_delivery,
                     linger_ms=5, delivery_timeout_s=60)
    store = WindowStore(None, max_per_feature=100_000)
    worker = workers(kafka_broker.bootstrap, topic, "drift", store)
    stop = threading.Event()
    sent: list[str] = []

    def produce() -> None:  # ~2 000 samples/s over 3 models until told to stop
        i = 0
        while not stop.is_set():
            batch = [Sample.new(f"m{j % 3}", "v1", {"x": float(i + j)}) for j in range(20)]
            sent.extend(s.sample_id for s in batch)
            sink.send(batch)
            i += 20
            time.sleep(0.01)

    producer_thread = threading.Thread(target=produce, daemon=True)
    producer_thread.start()
    try:
        wait_until(lambda: len(acked) > 1000, 30, "samples acknowledged before the restart")
        kafka_broker.stop()
        during = len(sent)
        time.sleep(2.0)
        kafka_broker.start()
        wait_until(lambda: len(sent) > during + 2000, 30, "samples sent after the restart")
    finally:
        stop.set()
        producer_thread.join()
    assert sink.flush(60), f"the sink did not drain: {sink.stats()}"
    stats = sink.stats()
    sink.close()
    assert stats.failed == 0 and stats.dropped == 0, stats
    with lock:
        acked_now = set(acked)
    assert len(acked_now) == len(sent)  # everything sent was acknowledged in the end
    wait_until(lambda: worker.stats().accepted >= len(acked_now), 60,
               f"{len(acked_now)} acknowledged samples in the windows")
    missing = acked_now - set(store.samples(acked_now))
    assert not missing, f"{len(missing)} acknowledged samples lost"
    total = sum(len(store.values(f"m{k}", "v1", "x")) for k in range(3))
    assert total == len(acked_now), "a sample was counted twice"


def test_cli_creates_topics_once_and_reports_lag(kafka_broker: Any, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    topic = "cli-topics-check"

    def cli(*args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "benchwatch", "kafka", *args,
                              "--bootstrap", kafka_broker.bootstrap, "--topic", topic],
                             capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout)

    first = cli("topics", "--partitions", "2")
    assert first == {topic: "created", f"{topic}.dead-letter": "created",
                     f"{topic}.window-state": "created"}
    assert set(cli("topics").values()) == {"exists"}
    lag = cli("lag", "--group", "nobody")
    assert lag["lag"] == 0 and [p["partition"] for p in lag["partitions"]] == [0, 1]
    missing = subprocess.run([sys.executable, "-m", "benchwatch", "kafka", "consume",
                              "--bootstrap", kafka_broker.bootstrap, "--topic", "no-such-topic",
                              "--state", str(tmp_path / "unused.db")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "benchwatch kafka topics --bootstrap" in missing.stderr


def test_scale_up_moves_windows_to_the_new_worker(kafka_broker: Any, workers: Any) -> None:
    """A second worker joins: the first forgets the partitions it hands over, the second
    restores their windows from the state topic; every sample is in exactly one of them."""
    from kafka.partitioner.default import murmur2

    from probes.sinks.kafka_wire import record_key

    topic = kafka_broker.topics(partitions=4)
    models = [f"m{k}" for k in range(8)]
    sink = KafkaSink(f"kafka://{kafka_broker.bootstrap}/{topic}")
    for i in range(0, 4000, 40):
        sink.send([Sample.new(models[j % 8], "v1", {"x": float(i + j)}) for j in range(40)])
    assert sink.flush(30)
    sink.close()
    first = workers(kafka_broker.bootstrap, topic, "drift", WindowStore(None))
    wait_until(lambda: first.stats().accepted == 4000, 30, "the first worker to read everything")
    from collector.kafka.topics import describe

    wait_until(lambda: describe(kafka_broker.bootstrap, "drift", topic)["lag"] == 0, 10,
               "a checkpoint of everything")
    second = workers(kafka_broker.bootstrap, topic, "drift", WindowStore(None))
    wait_until(lambda: len(first.stats().assigned) == 2 and len(second.stats().assigned) == 2, 30,
               "the partitions to be shared")
    wait_until(lambda: second.stats().restored_models > 0, 10, "the second worker to restore")

    def partition(model: str) -> int:
        return (murmur2(record_key(model, "v1")) & 0x7FFFFFFF) % 4

    for model in models:
        owner, other = ((second, first) if partition(model) in second.stats().assigned
                        else (first, second))
        assert owner.store.count(model, "v1", "x") == 500, model
        assert other.store.count(model, "v1", "x") == 0, model
    assert second.stats().accepted == 0  # nothing re-read: everything came from the snapshots


def test_big_samples_are_split_to_fit_a_record_and_oversized_ones_counted(kafka_broker: Any,
                                                                         workers: Any) -> None:
    from probes.sinks.kafka import MAX_RECORD_BYTES

    topic = kafka_broker.topics(partitions=1)
    sink = KafkaSink(f"kafka://{kafka_broker.bootstrap}/{topic}")
    emb = tuple(float(i) / 7 for i in range(4096))  # ~80 kB of JSON per sample
    big = [Sample.new("digits", "v3", {"confidence": i / 40}, inputs={"emb": emb}) for i in range(40)]
    huge = Sample.new("digits", "v3", {f"f{k}": emb for k in range(16)})  # one sample > 1 MB
    sink.send([*big, huge])
    assert sink.flush(30)
    stats = sink.stats()
    sink.close()
    assert (stats.acked, stats.failed) == (40, 1)
    assert stats.records >= 40 * 80_000 // MAX_RECORD_BYTES
    store = WindowStore(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", store)
    wait_until(lambda: worker.stats().accepted == 40, 30, "40 big samples in the windows")
    assert store.values("digits", "v3", "emb")[0] == emb
