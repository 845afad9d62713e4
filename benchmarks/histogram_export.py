"""Classic against exponential histograms, side by side (medians of repeats).

    .venv/bin/python benchmarks/histogram_export.py [--calls 200000] [--repeats 9] [--models 20]

1. Per call: the probe records each observation on a grid that holds the classic bounds and the
   base-2 bounds (probes/buckets.py), so the hot path is the same code whichever histogram kind
   is exported (exponential costs exactly what classic costs per call). What the grids cost is
   timed against the hot path before them: the same `@probe` with its bisect tables set back
   to the classic bounds (which could only export classic buckets): latency only
   (`outputs=None`), a served request's full probe (batch size of a (1, 64) input, class,
   confidence and entropy of (1, 10) float32 logits), and a batch of regression outputs
   ((64, 16) values: the vectorized path, one histogram per column). Interleaved, the order alternating per
   repeat; the ratio is the median of per-repeat ratios of added cost, which cancels most of a
   busy machine's drift. Target: within 10% of the classic path.
2. Per export (paid per scrape/push, off the request path): building the probe's metrics for
   `--models` model versions with traffic, classic explicit buckets against exponential
   buckets, and the OTLP protobuf size of each.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics  # noqa: E402
from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

from probes import probe  # noqa: E402
from probes.buckets import (  # noqa: E402
    BATCH_BOUNDS,
    CONFIDENCE_BOUNDS,
    ENTROPY_BOUNDS,
    LATENCY_BOUNDS_NS,
    LATENCY_GRID_NS,
    VALUE_BOUNDS,
)
from probes.export import SCOPE  # noqa: E402
from probes.metrics import Producer  # noqa: E402
from probes.state import Registry  # noqa: E402


def _with_bounds(fn: Callable[..., object], bounds: tuple[int, ...]) -> Callable[..., object]:
    """`fn` (a @probe wrapper) with its closure's bisect table replaced by `bounds`."""
    names = fn.__code__.co_freevars
    cell = fn.__closure__[names.index("bounds")]  # type: ignore[index]
    assert cell.cell_contents is LATENCY_GRID_NS
    cell.cell_contents = bounds
    return fn


@contextlib.contextmanager
def _classic_stats_bounds() -> Iterator[None]:
    """The batch-size, confidence, entropy and value bisect tables set back to the classic bounds."""
    import probes.decorator as dec
    import probes.stats as stats

    before = {"BATCH_GRID": BATCH_BOUNDS, "CONFIDENCE_GRID": CONFIDENCE_BOUNDS, "ENTROPY_GRID": ENTROPY_BOUNDS,
              "_CONF_GRID": np.array(CONFIDENCE_BOUNDS), "_ENT_GRID": np.array(ENTROPY_BOUNDS),
              "VALUE_GRID": VALUE_BOUNDS, "_VAL_GRID": np.array(VALUE_BOUNDS), "_N_VAL": len(VALUE_BOUNDS) + 1}
    mods = {k: dec if k == "BATCH_GRID" else stats for k in before}
    saved = {k: getattr(mods[k], k) for k in before}
    for k, v in before.items():
        setattr(mods[k], k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(mods[k], k, v)


# (variant, fewer calls by, its bare call, the variant before the grids, the shipped one)
PAIRS = (("latency only (outputs=None)", 1, "bare call", "@probe, classic bounds only (before)",
          "@probe, grid (shipped)"),
         ("served request (1x10 logits, batch)", 10, "bare call -> logits",
          "@probe + stats, classic bounds (before)", "@probe + stats, grids (shipped)"),
         ("regression batch (64x16 values)", 200, "bare call -> values",
          "@probe + values, classic bounds (before)", "@probe + values, grids (shipped)"))


def per_call(calls: int, repeats: int) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]]:
    """Median ns per call of each variant; per pair, (median, min, max) of the per-repeat ratios."""
    reg = Registry()
    x1 = np.zeros((1, 64), dtype=np.float32)
    logits = np.random.default_rng(1).normal(scale=3.0, size=(1, 10)).astype(np.float32)
    values = np.random.default_rng(2).normal(scale=10.0, size=(64, 16))

    def bare(x: object) -> object:
        return x

    def scores(x: object) -> np.ndarray:
        return logits

    def stats_probe(version: str) -> Callable[..., object]:
        return probe(model="stats", version=version, registry=reg)(scores)

    def regression(x: object) -> np.ndarray:
        return values

    def values_probe(version: str) -> Callable[..., object]:
        return probe(model="values", version=version, outputs="regression", registry=reg)(regression)

    nothing = contextlib.nullcontext
    # name -> (function, its argument, what the bisect tables are set to while it runs)
    variants: dict[str, tuple[Callable[..., object], object, Callable[[], contextlib.AbstractContextManager[None]]]] = {
        "bare call": (bare, 1, nothing),
        "@probe, classic bounds only (before)": (_with_bounds(
            probe(model="classic", version="v", outputs=None, registry=reg)(bare), LATENCY_BOUNDS_NS), 1, nothing),
        "@probe, grid (shipped)": (probe(model="grid", version="v", outputs=None, registry=reg)(bare), 1, nothing),
        "bare call -> logits": (scores, x1, nothing),
        "@probe + stats, classic bounds (before)": (_with_bounds(stats_probe("classic"), LATENCY_BOUNDS_NS), x1,
                                                    _classic_stats_bounds),
        "@probe + stats, grids (shipped)": (stats_probe("grid"), x1, nothing),
        "bare call -> values": (regression, x1, nothing),
        "@probe + values, classic bounds (before)": (_with_bounds(values_probe("classic"), LATENCY_BOUNDS_NS), x1,
                                                     _classic_stats_bounds),
        "@probe + values, grids (shipped)": (values_probe("grid"), x1, nothing),
    }
    n_calls = {name: max(calls // fewer, 10) for _, fewer, *names in PAIRS for name in names}
    samples: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for _ in range(repeats):
        order.reverse()
        for name in order:
            fn, arg, tables = variants[name]
            n = n_calls[name]
            with tables():
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    fn(arg)
                samples[name].append((time.perf_counter_ns() - t0) / n)
    ratios = {}
    for label, _, bare_name, before, shipped in PAIRS:
        r = [(g - b) / (c - b) for g, c, b in zip(samples[shipped], samples[before], samples[bare_name], strict=True)]
        ratios[label] = (statistics.median(r), min(r), max(r))
    return {k: statistics.median(v) for k, v in samples.items()}, ratios


def per_export(models: int, repeats: int, stats: bool) -> dict[str, tuple[float, int]]:
    """Build time and OTLP size of one export; `stats`: the models are classifiers called with
    (1, 64) inputs returning (1, 10) scores (batch size, class, confidence, entropy too)."""
    reg = Registry()
    rng = np.random.default_rng(0)
    x1 = np.zeros((1, 64))
    for k in range(models):
        f = probe(model=f"m{k}", version="v1", outputs="auto" if stats else None, registry=reg)(lambda x, s: s)
        for s in rng.normal(scale=3.0, size=(2000, 1, 10)):
            f(x1, s)
    out = {}
    for kind, exp in (("classic", False), ("exponential", True)):
        producer = Producer(reg, exponential=exp)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            metrics = producer()
            times.append(time.perf_counter_ns() - t0)
        data = MetricsData([ResourceMetrics(Resource.get_empty(), [ScopeMetrics(SCOPE, metrics, "")], "")])
        out[kind] = (statistics.median(times) / 1e6, len(encode_metrics(data).SerializeToString()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--models", type=int, default=20)
    args = ap.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(f"per call: {args.calls} calls x {args.repeats} repeats, medians; load average {' '.join(load)}")
    med, ratios = per_call(args.calls, args.repeats)
    for label, _, bare_name, before, shipped in PAIRS:
        bare = med[bare_name]
        for name in (bare_name, before, shipped):
            print(f"  {name:40} {med[name] / 1e3:7.3f} µs/call   added {(med[name] - bare) / 1e3:6.3f} µs")
        ratio, lo, hi = ratios[label]
        print(f"  {label}: grids / classic added cost, median of per-repeat ratios: {ratio:.3f} "
              f"(range {lo:.3f}-{hi:.3f}; target <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    print(f"per export: {args.models} model versions with traffic, {args.repeats} repeats, medians")
    for stats in (False, True):
        for kind, (ms, size) in per_export(args.models, args.repeats, stats).items():
            print(f"  {'classifiers' if stats else 'outputs=None':12} {kind:12} build {ms:7.2f} ms   "
                  f"OTLP payload {size / 1024:7.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
