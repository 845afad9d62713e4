"""Sampled calls take a snapshot on the serving thread; the drain thread builds the Samples.

Pinned here: the Samples are the ones the serving thread used to build itself (same features,
bit for bit), the snapshot is a private copy (the caller may reuse its output buffer), the
summaries run on the drain thread, the queue's bounds (samples and bytes) and drop counts are
exact, and faults are counted without reaching the caller.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

import probes.sampling as sampling
from probes import Sample, probe
from probes.sampling import MAX_SAMPLE_ROWS, SampleQueue
from probes.state import Faults, Registry
from probes.summarize import summarize_output


class ListSink:
    def __init__(self) -> None:
        self.got: list[Sample] = []

    def send(self, samples: Sequence[Sample]) -> None:
        self.got.extend(samples)

    def close(self) -> None:
        pass


class BlockedSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def send(self, samples: Sequence[Sample]) -> None:
        self.release.wait(10)
        super().send(samples)


class EagerQueue:
    """Takes finished Samples only: the probe builds them on the serving thread (the old path)."""

    def __init__(self) -> None:
        self.got: list[Sample] = []

    def offer(self, samples: list[Sample]) -> bool:
        self.got.extend(samples)
        return True


@pytest.fixture
def queue() -> Iterator[tuple[SampleQueue, ListSink]]:
    sink = ListSink()
    q = SampleQueue(sink, Faults(), maxsize=100_000, flush_interval_s=0.05)
    yield q, sink
    q.close()


def _old_reference(out: Any, spec: str) -> list[dict[str, Any]]:
    """What the serving thread built before snapshots: summaries of the first 64 rows."""
    head = out[:MAX_SAMPLE_ROWS] if isinstance(out, np.ndarray) and out.ndim >= 1 else out
    return summarize_output(head, spec)[:MAX_SAMPLE_ROWS]  # type: ignore[arg-type]


def _outputs() -> list[tuple[str, Any, str]]:
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3.0, size=(200, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    nan_rows = logits[:5].copy()
    nan_rows[1, 3] = np.nan
    nan_rows[3, 0] = np.inf
    return [
        ("1x10 f32 logits", logits[:1].astype(np.float32), "auto"),
        ("1x10 f64 logits", logits[:1], "auto"),
        ("64x10 f32 logits", logits[:64].astype(np.float32), "auto"),
        ("200x10 logits (kept 64)", logits, "auto"),
        ("probabilities", probs[:30], "auto"),
        ("non-finite rows", nan_rows, "auto"),
        ("1-D regression, 100 values", rng.normal(size=100), "auto"),
        ("int labels", rng.integers(0, 10, size=80), "auto"),
        ("2-D regression, 3 outputs", rng.normal(size=(7, 3)), "regression"),
        ("column regression", rng.normal(size=(9, 1)), "auto"),
        ("forced classifier 2-D", logits[:3], "classifier"),
        ("list of floats", [0.5, 1.5, -2.0], "regression"),
        ("nested list", [[0.1, 0.9], [0.7, 0.3]], "auto"),
        ("number", 3.25, "auto"),
        ("numpy scalar", np.float32(1.5), "auto"),
        ("non-contiguous view", logits[::2, ::3], "auto"),
    ]


@pytest.mark.parametrize("name,out,spec", _outputs(), ids=[c[0] for c in _outputs()])
def test_snapshot_samples_equal_the_eager_ones(queue: tuple[SampleQueue, ListSink], name: str, out: Any,
                                               spec: str) -> None:
    q, sink = queue
    inputs = {"n": 2.0, "kind": "a"}
    results = []
    for target in (q, EagerQueue()):
        reg = Registry()
        reg.sample_queue, reg.sample_rate = target, 1.0
        f = probe(model="m", version="v", registry=reg, outputs=spec,  # type: ignore[arg-type]
                  inputs=lambda x: inputs)(lambda x: out)
        f(1)
        assert reg.faults.counts()["sampling"] == 0
        results.append(reg)
    q.flush()
    eager = results[1].sample_queue.got  # type: ignore[union-attr]
    expected = _old_reference(out, spec)
    for got in (sink.got, eager):
        assert [dict(s.outputs) for s in got] == expected  # exact equality, float for float
        assert [(s.model, s.version, dict(s.inputs)) for s in got] == [("m", "v", inputs)] * len(expected)
        assert all(s.latency_s is not None and s.latency_s > 0 and s.timestamp > 1e9 for s in got)
        assert len({s.sample_id for s in got}) == len(got)
        for s in got:
            u = uuid.UUID(hex=s.sample_id)
            assert u.version == 4 and u.hex == s.sample_id
            assert Sample.from_dict(s.to_dict()) == s


def test_torch_outputs_equal_the_eager_ones(queue: tuple[SampleQueue, ListSink]) -> None:
    torch = pytest.importorskip("torch")
    q, sink = queue
    g = torch.Generator().manual_seed(0)
    cases = [torch.randn(3, 10, generator=g), torch.randn(100, 10, generator=g).to(torch.bfloat16),
             torch.randn(2, 5, generator=g, requires_grad=True), torch.randint(0, 9, (70,), generator=g),
             torch.randn(5, generator=g).to(torch.float16)]
    for out in cases:
        sink.got.clear()
        eager = EagerQueue()
        for target in (q, eager):
            reg = Registry()
            reg.sample_queue, reg.sample_rate = target, 1.0
            probe(model="m", version="v", registry=reg)(lambda out=out: out)()
            assert reg.faults.counts()["sampling"] == 0
        q.flush()
        head = out[:MAX_SAMPLE_ROWS] if out.ndim else out
        assert [dict(s.outputs) for s in sink.got] == [dict(s.outputs) for s in eager.got] \
            == summarize_output(head)


def test_the_snapshot_is_a_copy_of_the_callers_output(queue: tuple[SampleQueue, ListSink]) -> None:
    q, sink = queue
    reg = Registry()
    reg.sample_queue, reg.sample_rate = q, 1.0
    buf = np.array([[0.0, 5.0, 0.0]])  # a server reusing its output buffer for the next request

    @probe(model="m", version="v", registry=reg)
    def predict(c: int) -> np.ndarray:
        buf[:] = 0.0
        buf[0, c] = 5.0
        return buf

    for c in (1, 0, 2):
        predict(c)
    buf[:] = np.nan  # mutated after the last call returned, before the drain thread runs
    q.flush()
    assert [s.outputs["predicted_class"] for s in sink.got] == ["1", "0", "2"]


def test_a_torch_snapshot_is_a_detached_copy(queue: tuple[SampleQueue, ListSink]) -> None:
    torch = pytest.importorskip("torch")
    q, sink = queue
    reg = Registry()
    reg.sample_queue, reg.sample_rate = q, 1.0
    t = torch.tensor([[0.0, 4.0]], requires_grad=True)
    probe(model="m", version="v", registry=reg)(lambda: t)()
    with torch.no_grad():
        t[0, 0] = 9.0
    q.flush()
    assert sink.got[0].outputs["predicted_class"] == "1"


def test_summaries_run_on_the_drain_thread(monkeypatch: pytest.MonkeyPatch,
                                           queue: tuple[SampleQueue, ListSink]) -> None:
    q, sink = queue
    threads: list[int] = []
    real = sampling.summarize_output

    def spy(*a: Any, **k: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*a, **k)

    monkeypatch.setattr(sampling, "summarize_output", spy)
    reg = Registry()
    reg.sample_queue, reg.sample_rate = q, 1.0
    f = probe(model="m", version="v", registry=reg)(lambda: np.ones((2, 3)))
    for _ in range(5):
        f()
    deadline = time.monotonic() + 10
    while len(sink.got) < 10:  # the drain thread wakes every 50 ms here
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert threads and threading.get_ident() not in threads


def test_one_row_of_many_class_scores_is_not_truncated(queue: tuple[SampleQueue, ListSink]) -> None:
    q, sink = queue
    reg = Registry()
    reg.sample_queue, reg.sample_rate = q, 1.0
    row = np.zeros(100)
    row[90] = 7.0  # the top class lies past the 64th column
    probe(model="m", version="v", registry=reg, outputs="classifier")(lambda: row)()
    q.flush()
    assert [s.outputs["predicted_class"] for s in sink.got] == ["90"]


def test_snapshot_bounds_and_drops_are_exact_in_samples_and_bytes() -> None:
    sink = BlockedSink()
    q = SampleQueue(sink, Faults(), maxsize=100, batch_size=10, flush_interval_s=0.01)
    try:
        reg = Registry()
        reg.sample_queue, reg.sample_rate = q, 1.0
        sizes = [1, 7, 64, 30, 3] * 40
        outs = {n: np.ones((n, 4)) for n in set(sizes)}
        fns: dict[int, Callable[[], Any]] = {
            n: probe(model="m", version=f"v{n}", registry=reg)(lambda n=n: outs[n]) for n in outs}
        t0 = time.perf_counter()
        for n in sizes:
            fns[n]()
        assert time.perf_counter() - t0 < 2.0  # nobody waited for the blocked sink
        assert len(q) <= 100
        in_flight = 10 + 64  # at most one batch taken by the drain thread before it blocked
        dropped = q.dropped["queue_full"]
        assert dropped >= sum(sizes) - 100 - in_flight
        sink.release.set()
        q.flush()
        assert len(sink.got) + dropped == sum(sizes)  # every sample sent or counted, none twice
    finally:
        sink.release.set()
        q.close()

    sink2 = BlockedSink()
    sink2.release.set()
    q = SampleQueue(sink2, Faults(), maxsize=10_000, batch_size=10**6, flush_interval_s=60,
                    max_bytes=64 * 1000 * 8)  # 1000 rows of 64 float64
    try:
        wide = np.zeros((10, 64))
        accepted = sum(q.offer_snapshot(10, wide.nbytes, "m", "v", 0.0, 0.0, wide.copy(), "auto", None)
                       for _ in range(150))
        assert accepted == 100 and q.dropped["queue_full"] == 500 and len(q) == 1000
    finally:
        q.close()
    assert len(sink2.got) == 1000


def test_bad_outputs_are_faults_counted_off_and_on_the_serving_thread(
        queue: tuple[SampleQueue, ListSink]) -> None:
    q, sink = queue
    reg = Registry()
    q.faults = reg.faults
    reg.sample_queue, reg.sample_rate = q, 1.0
    bad = [np.ones((2, 2, 2)), {"not": "an array"}, np.ones((3, 1))]  # last: a 1-column "classifier"
    for out in bad:
        f = probe(model="m", version="v", registry=reg, outputs="classifier")(lambda out=out: out)
        assert f() is out  # the caller gets its own object back
    probe(model="m", version="ok", registry=reg)(lambda: np.array([[0.2, 0.8]]))()
    q.flush()
    assert reg.faults.counts()["sampling"] == 3
    assert [(s.version, s.outputs["predicted_class"]) for s in sink.got] == [("ok", "1")]
