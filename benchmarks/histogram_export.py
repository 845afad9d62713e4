"""Classic against exponential latency histograms, side by side (medians of repeats).

    .venv/bin/python benchmarks/histogram_export.py [--calls 200000] [--repeats 9] [--models 20]

1. Per call: the probe records each latency on one grid that holds the classic bounds and the
   base-2 bounds (probes/buckets.py), so the hot path is the same code whichever histogram kind
   is exported (exponential costs exactly what classic costs per call). What the grid costs is
   timed against the hot path before it: the same `@probe` with its bisect table set back to
   the 117 classic bounds (which could only export classic buckets). Interleaved, the order
   alternating per repeat; the ratio is the median of per-repeat ratios of added cost, which
   cancels most of a busy machine's drift. Target: within 10% of the classic path.
2. Per export (paid per scrape/push, off the request path): building the probe's metrics for
   `--models` model versions with traffic, classic explicit buckets against exponential
   buckets, and the OTLP protobuf size of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics  # noqa: E402
from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

from probes import probe  # noqa: E402
from probes.buckets import LATENCY_BOUNDS_NS, LATENCY_GRID_NS  # noqa: E402
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


def per_call(calls: int, repeats: int) -> dict[str, float]:
    reg = Registry()

    def bare(x: int) -> int:
        return x

    shipped = probe(model="grid", version="v", outputs=None, registry=reg)(bare)
    classic = _with_bounds(probe(model="classic", version="v", outputs=None, registry=reg)(bare), LATENCY_BOUNDS_NS)
    variants = {"bare call": bare, "@probe, classic bounds only (before)": classic,
                "@probe, grid (shipped)": shipped}
    samples: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for _ in range(repeats):
        order.reverse()
        for name in order:
            fn = variants[name]
            t0 = time.perf_counter_ns()
            for i in range(calls):
                fn(i)
            samples[name].append((time.perf_counter_ns() - t0) / calls)
    out = {k: statistics.median(v) for k, v in samples.items()}
    ratios = [(g - b) / (c - b) for g, c, b in zip(samples["@probe, grid (shipped)"],
                                                   samples["@probe, classic bounds only (before)"],
                                                   samples["bare call"], strict=True)]
    out["ratio"] = statistics.median(ratios)
    out["ratio_lo"], out["ratio_hi"] = min(ratios), max(ratios)
    return out


def per_export(models: int, repeats: int) -> dict[str, tuple[float, int]]:
    reg = Registry()
    for k in range(models):
        f = probe(model=f"m{k}", version="v1", outputs=None, registry=reg)(lambda: None)
        for _ in range(2000):
            f()
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
    med = per_call(args.calls, args.repeats)
    ratio, lo, hi = med.pop("ratio"), med.pop("ratio_lo"), med.pop("ratio_hi")
    bare = med["bare call"]
    for name, ns in med.items():
        print(f"  {name:40} {ns / 1e3:7.3f} µs/call   added {(ns - bare) / 1e3:6.3f} µs")
    print(f"  grid / classic added cost, median of per-repeat ratios: {ratio:.3f} (range {lo:.3f}-{hi:.3f}; "
          f"target <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    print(f"per export: {args.models} model versions with traffic, {args.repeats} repeats, medians")
    for kind, (ms, size) in per_export(args.models, args.repeats).items():
        print(f"  {kind:12} build {ms:7.2f} ms   OTLP payload {size / 1024:7.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
