"""Samples a buffering sink loses after `send` returned are counted in the probe's own
`benchwatch.probe.dropped` series (one series for every lost sample, whatever lost it).

The Kafka sink runs for real against an address where no broker listens (Kafka down): its local
buffer fills and the overflow is read back from the probe's real Prometheus endpoint as
`reason="sink_buffer_full"`. Delivery failures need a broker that accepts and then gives up;
without one the test calls the errback kafka-python's future would call (`_undelivered`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import probes
from benchwatch import promtext
from benchwatch.services import free_port
from probes import Sample
from probes import metric_names as m
from probes.sampling import SampleQueue
from probes.state import Faults
from tests.support.wait import wait_until

pytest.importorskip("kafka")
from probes.sinks.kafka import KafkaSink  # noqa: E402


@pytest.fixture
def dead_kafka_sink() -> Iterator[KafkaSink]:
    sink = KafkaSink(f"kafka://127.0.0.1:{free_port()}/nowhere", buffer_size=100,
                     producer_config={"bootstrap_timeout_ms": 300})
    yield sink
    sink.close(timeout_s=0.5)


def _dropped(url: str) -> dict[str, float]:
    s = promtext.read(url, timeout_s=5)
    return {r: s.total(m.DROPPED, reason=r)
            for r in ("queue_full", "sink_error", "sink_buffer_full", "sink_failed")}


def test_kafka_buffer_overflow_and_failures_show_in_probe_dropped(dead_kafka_sink: KafkaSink) -> None:
    sink = dead_kafka_sink
    reg = probes.Registry()
    port = free_port()
    rt = probes.configure("sink-drops", prometheus_port=port, gpu="off", sink=sink, sample_rate=1.0,
                          registry=reg)
    try:
        f = probes.probe(model="m", version="v", registry=reg)(lambda: np.array([1.5]))
        for _ in range(500):  # one sample per call
            assert f()[0] == 1.5
        assert rt.queue is not None
        rt.queue.flush()
        wait_until(lambda: sink.stats().received == 500, what="500 samples at the sink")
        st = sink.stats()
        assert st.dropped == 400 and st.buffered == 100  # nothing leaves: no broker to connect to
        url = f"http://127.0.0.1:{port}/metrics"
        got = _dropped(url)
        assert got == {"queue_full": 0, "sink_error": 0, "sink_buffer_full": 400, "sink_failed": 0}

        # kafka-python's errback for a batch the producer gave up on (delivery timeout)
        from kafka.errors import KafkaTimeoutError

        chunk = [Sample("m", "v", f"id{i}", 0.0, {"value": 1.0}) for i in range(7)]
        with sink._count_lock:
            sink._in_flight += len(chunk)  # as if handed to the producer
        sink._undelivered(chunk, KafkaTimeoutError("delivery timed out"))
        assert sink.stats().failed == 7
        assert _dropped(url)["sink_failed"] == 7
        assert rt.queue.sent == 500  # the queue handed them all over: the losses are the sink's
    finally:
        sink.close(timeout_s=0.5)  # Kafka is down: don't wait the default 5 s for a flush
        probes.shutdown()


class _CountingSink:
    def __init__(self, counts: Callable[[], Mapping[str, int]] | None) -> None:
        self.dropped_counts = counts

    def send(self, samples: Sequence[Sample]) -> None:
        pass

    def close(self) -> None:
        pass


def test_queue_merges_sink_counts_and_survives_a_broken_reader() -> None:
    q = SampleQueue(_CountingSink(lambda: {"sink_buffer_full": 3, "queue_full": 99}), Faults(), maxsize=1)
    try:
        q.offer([Sample("m", "v", "a", 0.0, {}), Sample("m", "v", "b", 0.0, {})])  # over maxsize
        # the queue's own reasons win over a sink's reason of the same name
        assert q.dropped == {"queue_full": 2, "sink_error": 0, "sink_buffer_full": 3}
    finally:
        q.close()

    def broken() -> dict[str, Any]:
        raise RuntimeError("stats unavailable")

    q = SampleQueue(_CountingSink(broken), Faults())
    try:
        assert q.dropped == {"queue_full": 0, "sink_error": 0}  # export never breaks on a sink
    finally:
        q.close()
