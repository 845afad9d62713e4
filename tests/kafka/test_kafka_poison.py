"""No record stops Kafka ingest (issue 16, findings 1 and 2), on a real broker: records that
cannot be decoded, whatever their shape, are dead-lettered, counted and skipped; a sample with
a lone surrogate costs itself only; the consumer thread never dies, a second consumer reading
the same records from the start does not die either, and an unexpected error in the loop
restarts it (counted) instead of ending Kafka ingest silently."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from collector import Collector, WindowStore
from collector.kafka.consumer import KafkaIngestor
from probes.samples import Sample
from probes.sinks.kafka_wire import MAX_DECODE_SAMPLES, encode_batch
from tests.support.kafka_worker import IngestorThread, running
from tests.support.wait import wait_until

pytestmark = pytest.mark.kafka

DEEP = b"BW\x01" + b"[" * 100_000  # the record that killed the consumer thread
TOO_MANY_ROWS = (b'BW\x01{"m": "digits", "v": "v3", "s": ['
                 + b",".join([b"0"] * (MAX_DECODE_SAMPLES + 1)) + b"]}")


class Worker(IngestorThread):
    def __init__(self, bootstrap: str, topic: str, group: str, collector: Collector) -> None:
        super().__init__(KafkaIngestor(collector, bootstrap, topic, group,
                                       dead_letter_topic=f"{topic}.dead-letter",
                                       commit_interval_s=0.3))


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    with running(Worker) as start:
        yield start


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 << 20)
    for value in values:
        producer.send(topic, key=b"digits/v3", value=value)
    producer.flush()
    producer.close()


def with_surrogate_sample(good: list[Sample]) -> bytes:
    """A batch whose middle sample's id is a lone surrogate (a JSON escape on the wire)."""
    payload = json.loads(encode_batch("digits", "v3", good)[3:])
    payload["s"].insert(len(good) // 2, ["x\udc80", 1.7e9, None, {"confidence": 0.5}, None])
    return b"BW\x01" + json.dumps(payload).encode()


def test_poison_records_of_any_shape_never_stop_the_partition(kafka_broker: Any,
                                                              workers: Any) -> None:
    topic = kafka_broker.topics(partitions=1)
    good = [Sample.new("digits", "v3", {"confidence": i / 40}) for i in range(40)]
    poison = [DEEP, TOO_MANY_ROWS]
    produce(kafka_broker.bootstrap, topic, [
        encode_batch("digits", "v3", good[:10]), DEEP, with_surrogate_sample(good[10:20]),
        TOO_MANY_ROWS, encode_batch("digits", "v3", good[20:40])])
    store = WindowStore(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", Collector(store))
    wait_until(lambda: worker.ingestor.stats().records == 5, 60, "all 5 records read")
    wait_until(lambda: worker.ingestor.stats().lag == 0, 30, "lag 0 (a lag metric, not absent)")
    stats = worker.ingestor.stats()
    assert worker.thread.is_alive()
    assert dict(stats.poison) == {"too_deep": 1, "too_large": 1}
    assert (stats.accepted, dict(stats.rejected)) == (40, {"invalid_text": 1})
    assert len(store.values("digits", "v3", "confidence")) == 40
    dlq = KafkaConsumer(f"{topic}.dead-letter", bootstrap_servers=kafka_broker.bootstrap,
                        auto_offset_reset="earliest", consumer_timeout_ms=5000, group_id=None,
                        fetch_max_bytes=4 << 20)
    dead = list(dlq)
    dlq.close()
    assert sorted(r.value for r in dead) == sorted(poison)
    assert sorted(dict(r.headers)["benchwatch-error"] for r in dead) == [b"too_deep", b"too_large"]

    # the same records read again from the start (another group: a restart with no commit)
    again = WindowStore(None)
    second = workers(kafka_broker.bootstrap, topic, "another-group", Collector(again))
    wait_until(lambda: second.ingestor.stats().records == 5, 60, "the second read")
    assert second.thread.is_alive() and second.ingestor.stats().accepted == 40
    # and later samples still arrive on both
    produce(kafka_broker.bootstrap, topic, [encode_batch("digits", "v3", [Sample.new(
        "digits", "v3", {"confidence": 1.0})])])
    wait_until(lambda: worker.ingestor.stats().accepted == 41
               and second.ingestor.stats().accepted == 41, 30, "a later sample")


class FailOnce(WindowStore):
    """Fault injection (a stand-in for a bug in the consumer loop): `meta_set`, which the loop
    calls after storing a record's samples, raises once."""

    failed = False

    def meta_set(self, key: str, value: str) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected fault")
        super().meta_set(key, value)


def test_an_unexpected_error_restarts_the_consumer_loop(kafka_broker: Any, workers: Any) -> None:
    topic = kafka_broker.topics(partitions=1)
    good = [Sample.new("digits", "v3", {"confidence": i / 10}) for i in range(10)]
    produce(kafka_broker.bootstrap, topic, [encode_batch("digits", "v3", good[:5])])
    store = FailOnce(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", Collector(store))
    wait_until(lambda: worker.ingestor.stats().restarts == 1, 60, "a restart")
    produce(kafka_broker.bootstrap, topic, [encode_batch("digits", "v3", good[5:])])
    wait_until(lambda: len(store.values("digits", "v3", "confidence")) == 10, 60,
               "the records after the restart")
    wait_until(lambda: worker.ingestor.stats().lag == 0, 30, "a lag again")
    stats = worker.ingestor.stats()
    assert worker.thread.is_alive() and stats.restarts == 1
    assert stats.accepted + stats.duplicates == 15  # the first record was read twice


class Unstorable(Collector):
    """Fault injection: ingesting the samples of model version `v-bad` raises (a data case the
    validation might miss); the store itself is fine."""

    def ingest(self, items: Any) -> Any:
        items = list(items)
        if any(d.get("version") == "v-bad" for d in items):
            raise ValueError("injected: cannot store this record")
        return super().ingest(items)


def test_a_record_that_cannot_be_stored_is_dead_lettered_not_retried_forever(
        kafka_broker: Any, workers: Any) -> None:
    topic = kafka_broker.topics(partitions=1)
    good = [Sample.new("digits", "v3", {"confidence": i / 10}) for i in range(6)]
    bad = encode_batch("digits", "v-bad", [Sample.new("digits", "v-bad", {"confidence": 0.1})])
    produce(kafka_broker.bootstrap, topic, [encode_batch("digits", "v3", good[:3]), bad,
                                            encode_batch("digits", "v3", good[3:])])
    store = WindowStore(None)
    worker = workers(kafka_broker.bootstrap, topic, "drift", Unstorable(store))
    wait_until(lambda: worker.ingestor.stats().accepted == 6, 60, "the good records")
    wait_until(lambda: worker.ingestor.stats().lag == 0, 30, "lag 0")
    assert dict(worker.ingestor.stats().poison) == {"unstorable": 1}
