"""The bench's energy figures at the two points: `model_call` (the probe's own sampler, energy
above the learned idle power: what live monitoring attributes) and `device` (the whole counter,
idle included); and `--max-duration-s` bounding the text bench.

There is no GPU here: the GPU is the FAKE `FakeGpu` of tests/support/energy_scenario.py (100 W
idle, +200 W while a call is on it), driven on the real clock by `RealTime` below, so the
bench's sampler threads, idle learning and windows run as they would on NVML.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from benchwatch.bench.backends import BackendError, BackendInfo
from benchwatch.bench.energy import DeviceCounter, attribute_energy
from benchwatch.bench.generative import GenSettings, ProbedLm, run_generative
from benchwatch.bench.model_call import ProbedBackend
from benchwatch.bench.runner import BenchResult, RunSettings, run_benchmark
from benchwatch.bench.suites import load_suite
from benchwatch.bench.text_suite import make_text_suite
from benchwatch.example import lm
from probes import DeviceReading
from tests.support.energy_scenario import FakeGpu

IDLE_W, BUSY_W = 100.0, 200.0
CALL_S = 0.002


class RealTime:
    """Drives the FAKE GPU on the real clock: its counter advances by the time elapsed, at the
    power of the moment, at every read and every call's start and end; `calls` keeps (units,
    seconds on the GPU) per call: the truth the attribution is checked against."""

    def __init__(self) -> None:
        self.gpu = FakeGpu(IDLE_W, BUSY_W)
        self._lock = threading.Lock()
        self._t = time.perf_counter()
        self.calls: list[tuple[int, float]] = []

    def _tick(self) -> float:
        now = time.perf_counter()
        self.gpu.run_for(now - self._t)
        self._t = now
        return now

    def read(self) -> list[DeviceReading]:
        with self._lock:
            self._tick()
            return self.gpu.read()

    def close(self) -> None:
        pass

    @contextmanager
    def on(self, units: int) -> Iterator[None]:
        with self._lock:
            t0 = self._tick()
            self.gpu.on += 1
        try:
            yield
        finally:
            with self._lock:
                self.calls.append((units, self._tick() - t0))
                self.gpu.on -= 1


class GpuClassifier:
    """A backend whose every call keeps the FAKE GPU busy for ~2 ms."""

    def __init__(self, gpu: RealTime) -> None:
        self.gpu = gpu
        self.info = BackendInfo("fake", "gpu-model", "v1", (64,), 10)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self.gpu.on(len(batch)):
            time.sleep(CALL_S)
        return np.zeros((len(batch), 10), dtype=np.float32)

    def close(self) -> None:
        pass


class GpuLm:
    """A streaming backend: 5 tokens of ~1 ms each, the FAKE GPU busy while it streams."""

    def __init__(self, gpu: RealTime) -> None:
        self.gpu = gpu
        self.info = BackendInfo("fake", "gpu-lm", "v1", None, None)

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               seed: int) -> Iterator[lm.Token]:
        n = min(5, max_tokens)
        with self.gpu.on(n):
            for _ in range(n):
                time.sleep(CALL_S / 2)
                yield lm.Token("a", 0.9, 0.1)

    def close(self) -> None:
        pass


def _counter(gpu: RealTime) -> DeviceCounter:
    return DeviceCounter(lambda: gpu, "gpu")


WARMUP, SINGLE_STREAM = 20, 300  # queries of `_bench_on_fake_gpu`


def _bench_on_fake_gpu(backend: ProbedBackend, gpu: RealTime, offline_samples: int
                       ) -> BenchResult:
    """The digits bench with the fake GPU's counter and the backend's own probe."""
    settings = RunSettings(warmup_queries=WARMUP, single_stream_queries=SINGLE_STREAM,
                           offline_samples=offline_samples, server=False)
    return run_benchmark(backend, load_suite("digits"), settings, energy=_counter(gpu),
                         probe=backend)


def test_model_call_energy_is_above_idle_and_the_device_figure_includes_idle() -> None:
    gpu = RealTime()
    backend = ProbedBackend(GpuClassifier(gpu))
    said: list[str] = []
    try:
        desc = attribute_energy([backend], _counter(gpu), said.append)
        assert desc is not None and desc.startswith("above idle") and said, desc
        assert backend.energy is not None and backend.energy.joules() == 0.0  # nothing ran yet
        watts, source = backend.energy.sampler.idle_watts()["gpu0"]
        assert source == "configured" and watts == pytest.approx(IDLE_W, rel=0.01)  # as learned
        r = _bench_on_fake_gpu(backend, gpu, offline_samples=2000)
    finally:
        backend.close()
    assert r.error is None
    by = {(f.name, f.point, f.scenario): f.value for f in r.figures()}
    # the truth: +200 W over each single-stream call's time on the GPU (1-row calls after the
    # warm-up; accuracy and offline calls are batches)
    # with a counter, single stream runs >= 2 s (NVML's counter moves about every 100 ms)
    assert r.single_stream is not None and r.single_stream.duration_s >= 2.0
    n = r.single_stream.summary.n
    assert n > SINGLE_STREAM
    single = [s for units, s in gpu.calls if units == 1][WARMUP:][:n]
    truth = BUSY_W * sum(single) / len(single)
    assert by["energy_per_inference_j", "model_call", "single_stream"] == pytest.approx(truth, rel=0.05)
    # the whole device over the offline window: idle draw included, so above 100 W's share
    device = by["energy_per_inference_j", "device", "offline"]
    assert r.offline is not None
    assert device > IDLE_W * r.offline.duration_s / r.offline.samples


def test_text_bench_energy_per_output_token_above_idle_and_device() -> None:
    gpu = RealTime()
    backend = ProbedLm(GpuLm(gpu))
    suite = make_text_suite("tiny", [f"prompt {i}" for i in range(8)], ["x"] * 8,
                            {"max_tokens": 5})
    settings = GenSettings(warmup_queries=4, queries=120)
    try:
        assert attribute_energy([backend], _counter(gpu), lambda _: None) is not None
        r = run_generative(backend, suite, settings, energy=_counter(gpu), probe_meter=backend.read)
    finally:
        backend.close()
    assert r.error is None and r.model_call is not None
    timed = gpu.calls[-settings.queries:]  # after the output pass and the warm-up
    tokens = sum(units for units, _ in timed)
    assert r.model_call.output_tokens == tokens == int(np.sum(r.tokens))
    truth = BUSY_W * sum(s for _, s in timed) / tokens
    by = {(f.name, f.point): f.value for f in r.figures()}
    assert by["energy_per_output_token_j", "model_call"] == pytest.approx(truth, rel=0.05)
    assert by["energy_per_output_token_j", "device"] > IDLE_W * r.wall_s / tokens


def test_no_model_call_energy_when_the_idle_power_is_not_learned() -> None:
    """An idle power not learned in time (a wait shorter than the probe's 3 s of idle blocks)
    gives no model_call energy rather than a wrong one; the device figure stays."""
    gpu = RealTime()
    backend = ProbedBackend(GpuClassifier(gpu))
    said: list[str] = []
    try:
        desc = attribute_energy([backend], _counter(gpu), said.append, timeout_s=0.1)
        assert desc is not None and desc.startswith("not measured") and backend.energy is None
        r = run_benchmark(backend, load_suite("digits"),
                          RunSettings(warmup_queries=5, single_stream_queries=50,
                                      offline_samples=500, server=False),
                          energy=_counter(gpu), probe=backend)
    finally:
        backend.close()
    points = {f.point for f in r.figures() if f.name == "energy_per_inference_j"}
    assert points == {"device"}
    assert "not learned" in said[0]


def test_text_bench_stops_where_its_progress_says_and_keeps_what_it_measured() -> None:
    """What `--max-duration-s` does between requests (cli.bench._bounded raises overtime):
    the outputs, the requests so far and the probe's window over them are kept."""
    gpu = RealTime()
    backend = ProbedLm(GpuLm(gpu))
    suite = make_text_suite("tiny", [f"prompt {i}" for i in range(8)], ["x"] * 8,
                            {"max_tokens": 5})

    def progress(task: str, done: int, total: int) -> None:
        if task == "single-stream" and done == 30:
            raise BackendError("overtime", "--max-duration-s reached")

    r = run_generative(backend, suite, GenSettings(warmup_queries=2, queries=1000), progress,
                       probe_meter=backend.read)
    assert r.error is not None and r.error.startswith("overtime") and "30 of 1000" in r.error
    assert len(r.ttft_s) == 30 and r.wall_s > 0 and len(r.outputs) == len(suite)
    assert r.model_call is not None and r.model_call.output_tokens == int(np.sum(r.tokens)) == 150


def test_text_bench_honours_max_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchwatch.cli import main

    t0 = time.monotonic()
    code = main(["bench", "--suite", "text", "--backend", "onnxruntime", "--threads", "1",
                 "--queries", "100000", "--warmup", "5", "--max-duration-s", "3", "--energy",
                 "off", "--no-progress", "-o", str(tmp_path)])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 3 and "overtime" in err and "--max-duration-s 3 reached" in err, err
    assert "fewer --queries" in err and "--offline-samples" not in err, err  # a text suite's options
    (results,) = tmp_path.glob("charlm-*/results.json")
    run = json.loads(results.read_text())["runs"][0]
    assert run["error"].startswith("overtime") and run["requests"] < 100000
    assert elapsed < 60  # 100 000 requests unbounded take ~15 min here


def test_a_cpu_backend_is_never_charged_the_gpu() -> None:
    """The bench's probe declares the backend's own devices, as the live probe on its ORT
    session or torch module finds them: the GPU's energy above idle while this CPU model runs
    (another tenant's, here) is not the model's."""
    from benchwatch.bench.backends import OnnxRuntimeBackend
    from benchwatch.example.model import shipped_model

    assert OnnxRuntimeBackend(shipped_model().onnx_path).devices == frozenset({"cpu"})
    gpu = RealTime()
    busy_elsewhere = GpuClassifier(gpu)
    busy_elsewhere.devices = frozenset({"cpu"})  # type: ignore[attr-defined]
    backend = ProbedBackend(busy_elsewhere)
    try:
        assert attribute_energy([backend], _counter(gpu), lambda _: None) is not None
        r = _bench_on_fake_gpu(backend, gpu, offline_samples=500)
    finally:
        backend.close()
    assert r.error is None and gpu.calls  # the GPU was busy while it ran
    by = {(f.name, f.point, f.scenario): f.value for f in r.figures()}
    assert by.get(("energy_per_inference_j", "model_call", "single_stream"), 0.0) == 0.0
