"""Sampled summaries: bounded queue that drops and counts, failing sinks, sample contents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from probes import Sample, configure, probe, shutdown
from probes import metric_names as m
from probes.sampling import SampleQueue
from probes.state import Faults, Registry


class ListSink:
    def __init__(self) -> None:
        self.got: list[Sample] = []
        self.closed = False

    def send(self, samples: Sequence[Sample]) -> None:
        self.got.extend(samples)

    def close(self) -> None:
        self.closed = True


class BlockedSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def send(self, samples: Sequence[Sample]) -> None:
        self.release.wait(10)
        super().send(samples)


class RaisingSink(ListSink):
    def send(self, samples: Sequence[Sample]) -> None:
        raise ConnectionError("collector down")


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def test_samples_reach_the_sink_with_features_inputs_and_latency() -> None:
    reg = Registry()
    sink = ListSink()
    configure("s", prometheus_port=0, gpu="off", sink=sink, sample_rate=1.0, registry=reg)

    @probe(model="digits", version="v3", registry=reg, inputs=lambda x: {"mean": float(x.mean())})
    def predict(x: np.ndarray) -> np.ndarray:
        return np.tile([[0.1, 0.9]], (len(x), 1))

    predict(np.ones((3, 4)))
    shutdown()  # flushes the queue and closes the sink
    assert sink.closed and len(sink.got) == 3 and len({s.sample_id for s in sink.got}) == 3
    s = sink.got[0]
    assert (s.model, s.version, s.outputs["predicted_class"], s.inputs["mean"]) == ("digits", "v3", "1", 1.0)
    assert s.latency_s is not None and s.latency_s > 0
    assert Sample.from_dict(s.to_dict()) == s


def test_sample_rate_is_honoured() -> None:
    reg = Registry()
    reg.rng.seed(7)
    sink = ListSink()
    configure("s", prometheus_port=0, gpu="off", sink=sink, sample_rate=0.1, registry=reg)

    @probe(model="m", version="v", registry=reg)
    def f() -> np.ndarray:
        return np.array([1.0])

    for _ in range(5000):
        f()
    shutdown()
    assert 400 <= len(sink.got) <= 600


def test_full_queue_drops_counts_and_never_blocks() -> None:
    faults = Faults()
    sink = BlockedSink()
    q = SampleQueue(sink, faults, maxsize=100, batch_size=10, flush_interval_s=0.01)
    try:
        t0 = time.perf_counter()
        accepted = sum(q.offer([Sample.new("m", "v", {"x": 1.0})]) for _ in range(10_000))
        assert time.perf_counter() - t0 < 2.0  # no call waited for the blocked sink
        assert accepted <= 110 and q.dropped["queue_full"] == 10_000 - accepted
        assert len(q) <= 100
    finally:
        sink.release.set()
        q.close()


def test_raising_sink_is_counted_and_the_caller_unaffected() -> None:
    reg = Registry()
    rt = configure("s", prometheus_port=0, gpu="off", sink=RaisingSink(), sample_rate=1.0, registry=reg)

    @probe(model="m", version="v", registry=reg)
    def f() -> np.ndarray:
        return np.array([2.0])

    for _ in range(20):
        assert f()[0] == 2.0
    assert rt.queue is not None
    rt.queue.flush()
    assert reg.faults.counts()["sink"] >= 1 and rt.queue.dropped["sink_error"] == 20
    metrics = {x.name: x for x in rt.collect()}
    dropped = {p.attributes["reason"]: p.value for p in metrics[m.OTEL_DROPPED].data.data_points}
    assert dropped["sink_error"] == 20
