"""The probe's fault matrix: nothing the probe does reaches the caller.

For every fault — exporter down, sink down or raising, sink full, outputs the statistics cannot
read (NaN, inf, None, strings, huge), the user's own function raising, 32 threads, asyncio
tasks — the served result is exactly what the unprobed function returns, the user's exception
is re-raised unchanged, and the fault is counted (read back from the real Prometheus endpoint).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import probes
from benchwatch import promtext
from benchwatch.services import free_port
from probes import Sample
from probes import metric_names as m
from tests.support.wait import wait_until


@pytest.fixture
def configured() -> Iterator[Callable[..., tuple[Any, str]]]:
    """configure(...) with a fresh Prometheus port; returns (runtime, metrics URL)."""

    def start(**kwargs: Any) -> tuple[Any, str]:
        port = free_port()
        rt = probes.configure("reliability", prometheus_port=port, **kwargs)
        return rt, f"http://127.0.0.1:{port}/metrics"

    probes.shutdown()
    probes.DEFAULT_REGISTRY.faults.reset()  # fault counters are per process: start from zero
    yield start
    probes.shutdown()


def version() -> str:
    return "v" + uuid.uuid4().hex[:8]  # a fresh (model, version): counts start at zero


def logits(x: np.ndarray) -> np.ndarray:
    """A deterministic 'model': 10 logits per row."""
    w = np.arange(x.shape[1] * 10, dtype=np.float64).reshape(x.shape[1], 10) % 7 - 3
    return x @ w


class RaisingSink:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, samples: Sequence[Sample]) -> None:
        self.calls += 1
        raise RuntimeError("sink exploded")

    def close(self) -> None:
        pass


class BlockedSink:
    """Takes one batch and then blocks until released: the queue behind it fills up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received = 0
        self.lock = threading.Lock()

    def send(self, samples: Sequence[Sample]) -> None:
        self.release.wait(30)
        with self.lock:
            self.received += len(samples)

    def close(self) -> None:
        self.release.set()


def test_exporter_down_otlp_push_to_nowhere(configured: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    rt, url = configured(otlp_endpoint=dead, export_interval_s=0.05)
    v = version()
    plain = logits
    probed = probes.probe(model="faults", version=v)(logits)
    x = np.random.default_rng(0).normal(size=(4, 8))
    deadline = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < deadline:
        assert np.array_equal(probed(x), plain(x))
        n += 1
    assert promtext.read(url, timeout_s=5).total(m.REQUESTS, model_version=v) == n
    # the OTLP exporter retries with backoff before it gives up: the failure is counted then
    wait_until(lambda: promtext.read(url, timeout_s=5).total(m.FAULTS, fault="export") >= 1, 20)
    assert np.array_equal(probed(x), plain(x))


def test_sink_down_http_collector_unreachable(configured: Any) -> None:
    rt, url = configured(sink=f"http://127.0.0.1:{free_port()}/v1/samples", sample_rate=1.0)
    v = version()
    probed = probes.probe(model="faults", version=v)(logits)
    x = np.ones((1, 8))
    for _ in range(200):
        assert np.array_equal(probed(x), logits(x))
    wait_until(lambda: rt.queue.dropped["sink_error"] + rt.queue.dropped["queue_full"] == 200)
    assert rt.queue.sent == 0
    assert promtext.read(url, timeout_s=5).total(m.DROPPED) == 200


def test_sink_raising(configured: Any) -> None:
    sink = RaisingSink()
    rt, url = configured(sink=sink, sample_rate=1.0)
    v = version()
    probed = probes.probe(model="faults", version=v)(logits)
    x = np.ones((2, 8))  # 2 rows -> 2 samples per call
    for _ in range(100):
        assert np.array_equal(probed(x), logits(x))
    wait_until(lambda: rt.queue.dropped["sink_error"] == 200)
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.DROPPED, reason="sink_error") == 200
    assert s.total(m.FAULTS, fault="sink") == sink.calls >= 1


def test_sink_full_drops_are_counted_exactly_and_calls_never_block(configured: Any) -> None:
    sink = BlockedSink()
    rt, url = configured(sink=sink, sample_rate=1.0, queue_size=50)
    v = version()
    probed = probes.probe(model="faults", version=v)(logits)
    x = np.ones((1, 8))
    n = 5000
    t0 = time.perf_counter()
    for _ in range(n):
        probed(x)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"{n} calls took {elapsed:.1f}s: the probe blocked on a full queue"
    sink.release.set()
    wait_until(lambda: len(rt.queue) == 0 and sink.received + rt.queue.dropped["queue_full"] == n)
    s = promtext.read(url, timeout_s=5)
    dropped = s.total(m.DROPPED, reason="queue_full")
    assert dropped == rt.queue.dropped["queue_full"] > 0
    assert sink.received + dropped == n  # every sampled request: delivered or counted as dropped


WEIRD_OUTPUTS: dict[str, Callable[[], Any]] = {
    "nan array": lambda: np.full((3, 10), np.nan),
    "inf array": lambda: np.array([[np.inf, -np.inf] + [0.0] * 8]),
    "mixed nan row": lambda: np.array([[0.1, np.nan, 0.9] + [0.0] * 7]),
    "None": lambda: None,
    "string": lambda: "a string, not an array",
    "bytes": lambda: b"\x00\xff",
    "dict": lambda: {"label": 3, "score": float("nan")},
    "list of junk": lambda: [1, "two", None, [3.0]],
    "big array": lambda: np.zeros((500, 1_000), dtype=np.float32),  # cost: see below
    "empty array": lambda: np.zeros((0, 10)),
    "0-d array": lambda: np.float64(np.nan),
    "string array": lambda: np.array([["a", "b"], ["c", "d"]]),
    "object array": lambda: np.array([[object(), None]], dtype=object),
    "complex array": lambda: np.ones((2, 10), dtype=np.complex128),
    "5-d array": lambda: np.ones((2, 2, 2, 2, 2)),
    "huge number": lambda: np.array([[1e308, -1e308] + [0.0] * 8]),
}


@pytest.mark.parametrize("kind", ["auto", "classifier", "regression"])
def test_outputs_the_statistics_cannot_read(configured: Any, kind: str) -> None:
    rt, url = configured(sink=RaisingSinkFree(), sample_rate=1.0)
    v = version()
    for name, make in WEIRD_OUTPUTS.items():
        value = make()
        probed = probes.probe(model="faults", version=v, outputs=kind)(lambda value=value: value)
        got = probed()
        assert got is value, f"{name}: the probe changed the returned object"
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.REQUESTS, model_version=v) == \
        len(WEIRD_OUTPUTS)
    assert s.total(m.ERRORS, model_version=v) == 0


# Huge outputs: the statistics read at most probes.stats.MAX_STAT_VALUES numbers per call (an
# evenly spaced subsample of rows, scaled back), so the added time does not grow with the output.
# Before that bound: 1M regression values added ~1.3 s, 20M 26 s, 20k x 1000 logits ~2 s.
# The best of 3 calls is asserted (the bound is ~0.3 ms here; 5 ms leaves room for a busy machine).
@pytest.mark.parametrize("kind,shape", [
    ("regression", (1_000_000,)),
    ("regression", (20_000_000,)),
    ("auto", (20_000, 1_000)),  # classifier logits
    ("classifier", (4_000_000,)),  # predicted labels (integers)
])
def test_huge_output_adds_bounded_time(kind: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    labels = kind == "classifier"
    out = rng.integers(0, 10, shape) if labels else rng.random(shape, dtype=np.float32)
    before = out.copy()
    reg = probes.Registry()
    v = version()
    probed = probes.probe(model="faults", version=v, outputs=kind, registry=reg)(lambda: out)
    added = []
    for _ in range(3):
        t0 = time.perf_counter()
        assert probed() is out
        added.append(time.perf_counter() - t0)
    assert min(added) < 0.005, f"the probe added {min(added) * 1000:.1f} ms to one call ({kind}, {shape})"
    assert np.array_equal(out, before)  # the caller's array is untouched
    t = reg.state("faults", v).snapshot().totals
    assert reg.faults.counts()["output_stats"] == 0
    calls = 3
    if kind == "regression":  # every value counted, the mean that of the subsample (uniform 0..1)
        (counts, total), = t.values.values()
        assert sum(counts) == calls * out.size
        assert total / sum(counts) == pytest.approx(0.5, abs=0.01)
    elif labels:
        assert sum(t.classes.values()) == calls * out.size
        assert max(t.classes.values()) / min(t.classes.values()) < 1.1  # ~uniform over 10 labels
    else:
        assert sum(t.classes.values()) == sum(t.conf) == sum(t.ent) == calls * shape[0]


class RaisingSinkFree:
    """A sink that accepts everything (so sampling of weird outputs is exercised too)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def send(self, samples: Sequence[Sample]) -> None:
        self.samples.extend(samples)

    def close(self) -> None:
        pass


class UserError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"user error {code}")
        self.code = code


def test_user_exception_reraised_unchanged_and_counted(configured: Any) -> None:
    rt, url = configured()
    v = version()
    raised: list[BaseException] = []

    def predict(x: int) -> int:
        if x % 3 == 0:
            e = UserError(x)
            raised.append(e)
            raise e
        if x % 3 == 1:
            raise KeyError(x)
        return x * 2

    probed = probes.probe(model="faults", version=v)(predict)
    for i in range(30):
        if i % 3 == 2:
            assert probed(i) == i * 2
            continue
        with pytest.raises((UserError, KeyError)) as info:
            probed(i)
        if i % 3 == 0:
            assert info.value is raised[-1] and info.value.code == i
            frames = [f.co_name for f in _tb_frames(info.value.__traceback__)]
            assert "predict" in frames, frames  # the user's frame is still in the traceback
        else:
            assert info.type is KeyError and info.value.args == (i,)
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.ERRORS, model_version=v, error_type="UserError") == 10
    assert s.total(m.ERRORS, model_version=v, error_type="KeyError") == 10
    assert s.total(m.REQUESTS, model_version=v) == 30
    assert s.total(m.IN_FLIGHT, model_version=v) == 0


def _tb_frames(tb: Any) -> Iterator[Any]:
    while tb is not None:
        yield tb.tb_frame.f_code
        tb = tb.tb_next


def test_32_threads_same_results_exact_counts(configured: Any) -> None:
    sink = RaisingSinkFree()
    rt, url = configured(sink=sink, sample_rate=1.0, queue_size=100_000)
    v = version()
    probed = probes.probe(model="faults", version=v)(logits)
    per_thread = 300
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(1, 8)) for _ in range(32)]

    def work(i: int) -> bool:
        return all(np.array_equal(probed(inputs[i] + k), logits(inputs[i] + k))
                   for k in range(per_thread))

    with ThreadPoolExecutor(32) as pool:
        assert all(pool.map(work, range(32)))
    total = 32 * per_thread
    wait_until(lambda: len(sink.samples) + rt.queue.dropped["queue_full"] == total)
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.REQUESTS, model_version=v) == total
    assert s.total(m.IN_FLIGHT, model_version=v) == 0
    assert len(sink.samples) == total and len({x.sample_id for x in sink.samples}) == total


def test_asyncio_tasks_same_results_exact_counts(configured: Any) -> None:
    rt, url = configured()
    v = version()

    async def predict(x: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0.001 * float(x[0, 0] % 3))
        return logits(x)

    probed = probes.probe(model="faults", version=v)(predict)

    async def main() -> list[bool]:
        xs = [np.full((1, 8), float(i)) for i in range(500)]
        got = await asyncio.gather(*(probed(x) for x in xs))
        want = await asyncio.gather(*(predict(x) for x in xs))
        return [np.array_equal(a, b) for a, b in zip(got, want, strict=True)]

    assert all(asyncio.run(main()))
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.REQUESTS, model_version=v) == 500
    assert s.total(m.IN_FLIGHT, model_version=v) == 0


def test_no_configure_costs_nothing_and_changes_nothing() -> None:
    probes.shutdown()
    probed = probes.probe(model="faults", version=version())(logits)
    x = np.ones((1, 8))
    assert np.array_equal(probed(x), logits(x))


def test_onnxruntime_session_and_torch_module_answer_exactly_as_unprobed(configured: Any) -> None:
    """The example model through ONNX Runtime and PyTorch: probed outputs bit-identical, and a
    bad input raises the framework's own exception type, counted as an error."""
    import onnxruntime as ort
    import torch

    from benchwatch.example import load_digits_arrays, load_torch_module, shipped_model

    rt, url = configured()
    files = shipped_model()
    x, _ = load_digits_arrays()
    batch = x[:64]
    plain_sess = ort.InferenceSession(str(files.onnx_path), providers=["CPUExecutionProvider"])
    v = version()
    sess = probes.probe(model="faults-ort", version=v)(
        ort.InferenceSession(str(files.onnx_path), providers=["CPUExecutionProvider"]))
    want = plain_sess.run(None, {"input": batch})[0]
    for _ in range(20):
        assert np.array_equal(sess.run(None, {"input": batch})[0], want)
    with pytest.raises(Exception) as plain_err:
        plain_sess.run(None, {"input": batch[:, :10]})
    with pytest.raises(type(plain_err.value)):
        sess.run(None, {"input": batch[:, :10]})  # wrong shape: the framework's own error

    plain_mod, mod = load_torch_module(files), probes.probe(model="faults-torch", version=v)(
        load_torch_module(files))
    with torch.inference_mode():
        t = torch.from_numpy(batch)
        assert torch.equal(mod(t), plain_mod(t))
        with pytest.raises(RuntimeError):
            mod(t[:, :10])
    s = promtext.read(url, timeout_s=5)
    assert s.total(m.REQUESTS, model="faults-ort") == 21
    assert s.total(m.ERRORS, model="faults-ort") == 1
    assert s.total(m.REQUESTS, model="faults-torch") == 2
    assert s.total(m.ERRORS, model="faults-torch") == 1
