"""Bench a Python callable in this process: the API behind `benchwatch.bench.bench_callable`.

    from benchwatch.bench import bench_callable
    from benchwatch.bench.suites import load_suite

    result = bench_callable(lambda batch: session.run(None, {"X": batch})[1],
                            load_suite("suites/bc.json"), model="bc", version="v1", out="runs")

The callable takes a float32 batch (rows x features) and returns per-class scores (rows x
classes): a numpy array, a torch tensor, nested lists, or an ONNX Runtime `run()` result (its
scores output is picked as the probe picks it, `probes.ort_outputs`). The same scenarios as
`benchwatch bench`, the call probed like the CLI's in-process backends (so the baseline has
`model_call` figures); with `out`, the run's files and `baseline-callable.json` are written
under `out/MODEL-TIMESTAMP/`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.bench.backends import BackendError, BackendInfo
from benchwatch.bench.runner import BenchResult, Progress, RunSettings, run_benchmark
from benchwatch.bench.suites import Suite, check_fits
from benchwatch.errors import UsageError
from probes.ort_outputs import classifier_scores
from probes.summarize import as_array

log = logging.getLogger(__name__)


class CallableBackend:
    """A Python callable as a bench backend (name `callable`)."""

    def __init__(self, fn: Callable[[np.ndarray], Any], model: str, version: str,
                 input_shape: tuple[int, ...] | None = None) -> None:
        if not callable(fn):
            raise UsageError(f"bench_callable needs a callable, got {type(fn).__name__}")
        if not model or not version:
            raise UsageError("bench_callable needs model= and version=, the labels your probe "
                             "uses, so the baseline matches live traffic")
        self._fn = fn
        self.info = BackendInfo("callable", model, version, input_shape, None,
                                f"in-process {getattr(fn, '__qualname__', type(fn).__name__)}")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = self._fn(batch)
        if isinstance(out, list | tuple) and out and isinstance(out[0], dict):
            out = [out]  # a ZipMap's rows ({label: probability}) returned as they are
        if isinstance(out, list | tuple) and out and isinstance(out[0], np.ndarray | list) and (
                isinstance(out[0], np.ndarray) or isinstance(out[-1], list) and out[-1]
                and isinstance(out[-1][0], dict)):
            out = classifier_scores(out)  # an ONNX Runtime run() result: its scores output
        try:
            scores = as_array(out)
        except ValueError as e:
            raise BackendError("malformed", f"the callable returned {type(out).__name__}: {e}; "
                               "return per-class scores (rows x classes)") from e
        return scores  # the runner checks the shape once, after the accuracy pass

    def close(self) -> None:
        pass


def bench_callable(fn: Callable[[np.ndarray], Any], suite: Suite, *, model: str, version: str,
                   out: str | Path | None = None, queries: int = 2000, warmup: int = 100,
                   offline_samples: int = 20_000, batch_size: int = 64, server: bool = True,
                   rates: Sequence[float] = (), energy: str = "auto", seed: int = 0,
                   progress: Progress | None = None) -> BenchResult:
    """Run `benchwatch bench`'s scenarios on `fn` over `suite`; with `out`, write the run and
    its drift baseline (`model`/`version` as your probe labels them). A backend failure is
    kept in `result.error`, as the CLI keeps it.

    `rates`: also Poisson arrivals at each of these request rates (`--rate`), so the latency
    alert has a baseline at the load production serves. `energy` as `--energy` (auto: the GPU
    when NVML sees one): the model_call joules above idle, the probe's own attribution."""
    from benchwatch.bench.artifacts import new_run_dir, write_run
    from benchwatch.bench.energy import attribute_energy, energy_meter, with_model_call
    from benchwatch.bench.model_call import ProbedBackend

    backend = ProbedBackend(CallableBackend(fn, model, version, suite.input_shape))
    check_fits(suite, backend.info.input_shape, None)
    settings = RunSettings(seed=seed, warmup_queries=warmup, single_stream_queries=queries,
                           offline_batch_size=batch_size, offline_samples=offline_samples,
                           server=server, fixed_rates_qps=tuple(rates))
    meter, meter_desc = energy_meter(energy)
    try:
        meter_desc = with_model_call(meter_desc, attribute_energy([backend], meter, log.info))
        result = run_benchmark(backend, suite, settings, progress, meter, backend)
    finally:
        backend.close()
        if meter is not None:
            meter.close()
    if out is not None:
        write_run(new_run_dir(out, model), suite, [result],
                  {**settings.__dict__, "energy": meter_desc}, version)
    return result
