from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from benchwatch.bench.backends import NullBackend, make_backend
from benchwatch.bench.runner import (
    LatencySummary,
    RunSettings,
    query_order,
    run_benchmark,
    timed_loop,
)
from benchwatch.bench.suites import load_suite
from benchwatch.example.model import SPLIT_SEED
from probes.buckets import LATENCY_BOUNDS_S


def test_shipped_model_reaches_its_recorded_accuracy_with_onnxruntime() -> None:
    """The ONNX file in the package, on the held-out digits (rebuilt from scikit-learn with the
    recorded split seed), scores exactly what its JSON says; its version is its content hash."""
    import onnxruntime as ort

    from benchwatch.example.model import load_digits_arrays, shipped_model, split_indices

    files = shipped_model()
    meta = files.meta
    assert files.version == hashlib.sha256(files.onnx_path.read_bytes()).hexdigest()[:12]
    assert meta["split_seed"] == SPLIT_SEED and files.onnx_path.stat().st_size < 100_000
    x, y = load_digits_arrays()
    _, test_idx = split_indices(len(x))
    assert len(test_idx) == meta["test_rows"]
    sess = ort.InferenceSession(str(files.onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [meta["input_name"]]
    assert [o.name for o in sess.get_outputs()] == [meta["output_name"]]
    logits = sess.run(None, {meta["input_name"]: x[test_idx]})[0]
    assert logits.shape == (len(test_idx), meta["num_classes"])
    accuracy = float(np.mean(logits.argmax(1) == y[test_idx]))
    assert accuracy == pytest.approx(meta["test_accuracy"], abs=1e-6)
    assert accuracy > 0.95
    # the shipped suite is those same rows
    np.testing.assert_array_equal(load_suite("digits").inputs, x[test_idx])


def test_retraining_writes_the_shipped_model_again(tmp_path: Path) -> None:
    """`python -m benchwatch.example.train` is how the shipped files are made: with the PyTorch
    build that made them it writes the same bytes; with another, the same model up to float
    rounding (same predictions on nearly every held-out digit)."""
    import onnxruntime as ort
    import torch

    from benchwatch.example.model import load_digits_arrays, shipped_model, split_indices
    from benchwatch.example.train import write_model

    shipped, fresh = shipped_model(), write_model(tmp_path)
    assert fresh.meta["torch_version"] == torch.__version__
    if shipped.meta["torch_version"] == torch.__version__:
        assert fresh.onnx_path.read_bytes() == shipped.onnx_path.read_bytes()
        assert fresh.meta == shipped.meta
        return
    x, _ = load_digits_arrays()
    _, test_idx = split_indices(len(x))
    preds = [ort.InferenceSession(str(f.onnx_path), providers=["CPUExecutionProvider"])
             .run(None, {"input": x[test_idx]})[0].argmax(1) for f in (shipped, fresh)]
    assert np.mean(preds[0] == preds[1]) > 0.97
    assert fresh.meta["test_accuracy"] == pytest.approx(shipped.meta["test_accuracy"], abs=0.02)


def test_torch_and_onnxruntime_agree_on_the_suite() -> None:
    """The torch backend loads the shipped ONNX file's weights into the same architecture."""
    suite = load_suite("digits")
    ort_b, torch_b = make_backend("onnxruntime"), make_backend("torch")
    a, b = ort_b.predict(suite.inputs), torch_b.predict(suite.inputs)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.mean(a.argmax(1) == suite.expected) > 0.9


def test_same_query_order_for_every_backend_and_seed_matters() -> None:
    a, b = query_order(449, 2000, seed=3), query_order(449, 2000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, query_order(449, 2000, seed=4))
    counts = np.bincount(a, minlength=449)
    assert counts.min() >= 4 and counts.max() <= 5  # every row used evenly


def test_significance_rules() -> None:
    s = LatencySummary.of(np.linspace(1, 2, 100))
    assert s.significant == {"p50": True, "p90": True, "p99": False}
    assert LatencySummary.of(np.linspace(1, 2, 700)).significant["p99"]


def test_null_backend_run_has_every_scenario() -> None:
    suite = load_suite("digits")
    settings = RunSettings(single_stream_queries=700, offline_samples=5000, server_step_s=0.1,
                           server_max_steps=2, server_max_qps=2000)
    r = run_benchmark(NullBackend(10, (64,)), suite, settings)
    assert r.error is None and r.single_stream and r.offline and r.server and r.accuracy
    assert r.single_stream.summary.n == 700 and r.single_stream.summary.significant["p99"]
    assert r.offline.samples >= 5000 and r.offline.duration_s >= 0.5 and r.offline.throughput_qps > 0
    assert r.server.steps and r.server.steps[0].queries >= 662
    figures = r.figures()
    assert {f.name for f in figures} == {"latency_p50_s", "latency_p90_s", "latency_p99_s",
                                         "throughput_qps", "accuracy"}
    # the runner's own timer around an in-process call; no probe given: no model_call figure
    assert {f.point for f in figures} == {"harness", "outputs"}
    p99 = {f.scenario: f for f in figures if f.name == "latency_p99_s"}
    assert set(p99) == {"single_stream", "server"}
    assert p99["single_stream"].rate_qps == pytest.approx(
        700 / r.single_stream.duration_s)
    assert p99["server"].rate_qps == max(st.achieved_qps for st in r.server.steps
                                         if st.passed and st.target_qps == r.server.best_qps)


def test_an_in_process_bench_records_the_probes_own_histogram() -> None:
    """A `@probe` of a private registry around the backend: model_call figures per latency
    scenario from its histogram (the live buckets), beside the harness's own, same rate."""
    from benchwatch.bench.model_call import ProbedBackend

    suite = load_suite("digits")
    backend = ProbedBackend(make_backend("onnxruntime"))
    settings = RunSettings(single_stream_queries=700, offline_samples=1000, server=False,
                           fixed_rates_qps=(300.0,), server_step_s=0.1)
    r = run_benchmark(backend, suite, settings, probe=backend)
    assert r.error is None
    assert r.model_call["single_stream"].calls == 700  # the timed queries, not the warm-up
    assert r.model_call["server_300qps"].calls == 762  # p99's 662 minimum + 100
    by = {(f.name, f.point, f.scenario): f for f in r.figures()}
    for scenario in ("single_stream", "server_300qps"):
        call = by["latency_p99_s", "model_call", scenario]
        harness = by["latency_p99_s", "harness", scenario]
        assert call.rate_qps == harness.rate_qps and call.rate_qps
        # the probe reads at the live histogram's resolution (buckets from 100 µs): its p50
        # is at most the upper bound of the bucket holding the harness's p50 (which times
        # the probe and the call, so never less than the call)
        harness_p50 = by["latency_p50_s", "harness", scenario].value
        upper = min(b for b in LATENCY_BOUNDS_S if b >= harness_p50)
        assert 0 < by["latency_p50_s", "model_call", scenario].value <= upper
    assert 200 < by["latency_p99_s", "model_call", "server_300qps"].rate_qps < 400
    assert ("latency_p99_s", "model_call", "offline") not in by  # batched calls: not like live
    # nothing global: the process's default registry never saw these calls
    from probes.state import DEFAULT_REGISTRY

    assert all(st.model != backend.info.model or st.version != backend.info.version
               for st in DEFAULT_REGISTRY.states())


def test_fixed_rates_run_first_with_the_number_of_queries_asked_for() -> None:
    """A production-rate tail is measured right after the warm-up, not in the wake of the
    saturating single-stream and offline runs."""
    from benchwatch.bench.model_call import ProbedBackend

    suite = load_suite("digits")
    backend = ProbedBackend(NullBackend(10, (64,)))
    tasks: list[str] = []
    settings = RunSettings(single_stream_queries=700, offline_samples=1000, server=False,
                           fixed_rates_qps=(2000.0,), fixed_rate_queries=900)
    r = run_benchmark(backend, suite, settings, lambda task, done, total: tasks.append(task),
                      probe=backend)
    assert r.error is None and r.model_call["server_2000qps"].calls == 900
    order = [t for i, t in enumerate(tasks) if t not in tasks[:i]]
    assert order == ["accuracy", "fixed rates", "single-stream", "offline"], order


def test_harness_overhead_per_query_is_under_20_microseconds() -> None:
    """The issue's target, measured as the median of repeats (the full table is
    benchmarks/bench_harness.py)."""
    backend = NullBackend(10, (64,))
    suite = load_suite("digits")
    rows = [suite.inputs[i : i + 1] for i in range(len(suite))]
    order = query_order(len(suite), 20000, 0)
    overheads = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in order.tolist():
            backend.predict(rows[i])
        direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        timed_loop(backend.predict, rows, order)
        harness = time.perf_counter() - t0
        overheads.append((harness - direct) / len(order))
    assert float(np.median(overheads)) < 20e-6


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_backends_run_the_scenarios(backend: str) -> None:
    settings = RunSettings(single_stream_queries=300, offline_samples=2000, server=False)
    r = run_benchmark(make_backend(backend), load_suite("digits"), settings)
    assert r.error is None and r.accuracy and r.accuracy.accuracy > 0.9
    assert r.single_stream and not r.single_stream.summary.significant["p99"]


def test_loadgen_cross_check_reports_the_same_scenario() -> None:
    from benchwatch.bench.loadgen_check import compare_with_runner, run_loadgen
    from benchwatch.bench.runner import run_single_stream

    suite = load_suite("digits")
    backend = NullBackend(10, (64,))
    lg = run_loadgen(backend, suite, "SingleStream", 700, min_duration_s=0.1)
    assert lg["queries"] == 700 and lg["p90_s"] > 0 and lg["early_stopping_estimate_s"] > 0
    ours = run_single_stream(backend, suite, RunSettings(single_stream_queries=700))
    ratio = compare_with_runner(ours.latencies_s, lg)
    assert ratio["p50_s"] and ratio["p50_s"] > 1  # LoadGen adds its callback path


def test_bench_bad_model_or_suite_exits_2(tmp_path: Path) -> None:
    from benchwatch.cli import main

    assert main(["bench", "--model", str(tmp_path / "nope.onnx"), "-o", str(tmp_path),
                 "--no-progress"]) == 2
    assert main(["bench", "--suite", str(tmp_path / "nope"), "-o", str(tmp_path),
                 "--no-progress"]) == 2


def test_energy_per_inference_from_a_meter() -> None:
    """No GPU here: a fake meter standing in for NVML's counter (a constant 50 W)."""
    suite = load_suite("digits")
    settings = RunSettings(single_stream_queries=100, offline_samples=2000, server=False)
    r = run_benchmark(NullBackend(10, (64,)), suite, settings,
                      energy=lambda: 50.0 * time.perf_counter())
    assert r.offline and r.offline.duration_s >= 2.0  # long enough for a 100 ms counter
    expected = 50.0 / r.offline.throughput_qps
    assert r.energy_per_inference_j == pytest.approx(expected, rel=0.05)
    (energy,) = [f for f in r.figures() if f.name == "energy_per_inference_j"]
    assert energy.value == r.energy_per_inference_j
    # the meter counts the whole device over the offline window: not the probe's attribution
    assert (energy.point, energy.scenario) == ("device", "offline")


def test_energy_meter_without_a_gpu_is_not_measured_or_a_clear_error() -> None:
    from benchwatch.bench.energy import EnergyUnavailable, energy_meter

    meter, why = energy_meter("off")
    assert meter is None and why == "off"
    meter, why = energy_meter("auto")
    if meter is None:  # the development machines: no NVML
        assert why.startswith("not measured")
        with pytest.raises(EnergyUnavailable, match="gpu"):
            energy_meter("gpu")
    else:  # a GPU machine
        assert meter() >= 0 and why.startswith("gpu")


def test_bench_defaults_to_the_onnxruntime_backend(tmp_path: Path) -> None:
    """Without --backend, bench uses ONNX Runtime (in the `demo` and `bench` extras), never
    torch (installed only when asked for)."""
    from benchwatch.cli import main

    assert main(["bench", "-o", str(tmp_path), "--queries", "100", "--offline-samples", "500",
                 "--no-server", "--no-progress", "--energy", "off"]) == 0
    (run,) = tmp_path.glob("digits-*")
    doc = json.loads((run / "results.json").read_text())
    assert [r["backend"] for r in doc["runs"]] == ["onnxruntime"]
