"""The recording grids serve both exports exactly (probes/exponential.py), and
`configure(histograms=...)` refuses what cannot work."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import ExponentialHistogramDataPoint, HistogramDataPoint

import probes
from probes.buckets import (
    BATCH_BOUNDS,
    CONFIDENCE_BOUNDS,
    ENTROPY_BOUNDS,
    EXP_SCALE,
    LATENCY_BOUNDS_NS,
    LATENCY_GRID_NS,
    VALUE_BOUNDS,
)
from probes.errors import ConfigError
from probes.exponential import (
    BATCH,
    CONFIDENCE,
    ENTROPY,
    GRID_CELLS,
    VALUE,
    Grid,
    to_classic,
    to_exponential,
)
from probes.metrics import Producer
from probes.state import Registry


def _cells(ns_values: list[int]) -> list[int]:
    cells = [0] * GRID_CELLS
    for v in ns_values:
        cells[bisect_left(LATENCY_GRID_NS, v)] += 1
    return cells


def _latencies(seed: int, n: int = 20_000) -> list[int]:
    rng = np.random.default_rng(seed)
    x = np.exp(rng.uniform(np.log(2e3), np.log(5e11), n))  # 2 µs .. 500 s
    return [int(v) for v in x] + [LATENCY_BOUNDS_NS[5], LATENCY_BOUNDS_NS[5] + 1, 10**9, 2**30]


def test_classic_counts_equal_a_bisect_on_the_classic_bounds() -> None:
    values = _latencies(1)
    expected = [0] * (len(LATENCY_BOUNDS_NS) + 1)
    for v in values:
        expected[bisect_left(LATENCY_BOUNDS_NS, v)] += 1
    assert to_classic(_cells(values)) == expected


@pytest.mark.parametrize("max_buckets", [320, 160, 40])
def test_exponential_counts_equal_the_base2_index_of_each_value(max_buckets: int) -> None:
    """Bucket i at scale s holds (2**(i/2**s), 2**((i+1)/2**s)] seconds, as OTel and
    Prometheus define it; downscaling only merges neighbours."""
    values = _latencies(2)
    b = to_exponential(_cells(values), max_buckets)
    assert len(b.counts) <= max_buckets and b.scale <= EXP_SCALE
    expected: Counter[int] = Counter()
    for v in values:
        expected[math.ceil(math.log2(v / 1e9) * 2**b.scale) - 1] += 1
    got = {b.offset + k: c for k, c in enumerate(b.counts) if c}
    near = [k for k in set(expected) | set(got) if expected[k] != got.get(k, 0)]
    # a value within float rounding of a bound may land either side: allow a handful
    assert sum(abs(expected[k] - got.get(k, 0)) for k in near) <= 4, near


def test_a_narrow_distribution_keeps_the_finest_scale() -> None:
    b = to_exponential(_cells([20_000_000 + k for k in range(0, 400_000, 97)]))
    assert b.scale == EXP_SCALE and sum(b.counts) == len(range(0, 400_000, 97))


def test_an_empty_histogram_has_no_buckets() -> None:
    b = to_exponential([0] * GRID_CELLS)
    assert b.counts == () and b.offset == 0


def test_the_producer_exports_either_kind_from_the_same_state() -> None:
    reg = Registry()

    @probes.probe(model="e", version="v", outputs=None, registry=reg)
    def f() -> None:
        pass

    for _ in range(50):
        f()
    classic = next(x for x in Producer(reg)() if x.name == "benchwatch.inference.duration")
    native = next(x for x in Producer(reg, exponential=True)() if x.name == "benchwatch.inference.duration")
    [cp] = classic.data.data_points
    [npnt] = native.data.data_points
    assert cp.count == npnt.count == 50 and cp.sum == npnt.sum
    assert len(cp.explicit_bounds) == 117 and sum(npnt.positive.bucket_counts) == 50


def test_exponential_needs_an_otlp_endpoint_and_a_known_kind() -> None:
    with pytest.raises(ConfigError, match="otlp_endpoint"):
        probes.configure(histograms="exponential", prometheus_port=0, registry=Registry())
    with pytest.raises(ConfigError, match="histograms must be one of"):
        probes.configure(histograms="native", prometheus_port=0, registry=Registry())
    assert probes.current() is None


def _expected_index(v: float, g: Grid) -> int:
    """The OTel/Prometheus base-2 bucket of |v| at the grid's scale, clamped to its range."""
    lo, hi = g.min_index - 1, g.min_index + len(g.base2) - 1
    return min(max(math.ceil(math.log2(abs(v)) * 2**g.scale) - 1, lo), hi)


def _output_values(name: str, rng: np.random.Generator) -> list[float]:
    exact = [0.0, 1.0, 2.0, 0.5, 0.25, 0.05, 0.95, 1e-7]  # powers of two, zero, classic bounds
    if name == "batch":
        return [float(x) for x in rng.integers(0, 3000, 2000)] + [0.0, 1.0, 2.0, 4096.0, 5000.0, 2.0**21]
    if name == "confidence":
        return rng.beta(5, 1, 5000).tolist() + exact[:-1] + [1e-9]
    if name == "entropy":
        return rng.exponential(0.5, 5000).tolist() + exact + [30.0]
    x = rng.normal(0, 1, 3000) * np.exp(rng.uniform(-12, 18, 3000))
    return x.tolist() + exact + [-v for v in exact] + [-3.0, -1e-6, 1e9, -1e9, -0.001, 0.001]


@pytest.mark.parametrize("name", ["batch", "confidence", "entropy", "value"])
def test_every_histogram_grid_serves_both_kinds_exactly(name: str) -> None:
    """Batch size, confidence, entropy and output values (signed: negative buckets and a zero
    bucket) count on grids that give the classic buckets (le) and the base-2 buckets exactly,
    powers of two and zero included."""
    g, classic = {"batch": (BATCH, BATCH_BOUNDS), "confidence": (CONFIDENCE, CONFIDENCE_BOUNDS),
                  "entropy": (ENTROPY, ENTROPY_BOUNDS), "value": (VALUE, VALUE_BOUNDS)}[name]
    values = _output_values(name, np.random.default_rng(7))
    cells = [0] * g.cells
    for v in values:
        cells[bisect_left(g.bounds_ns, v)] += 1
    want_classic = [0] * (len(classic) + 1)
    for v in values:
        want_classic[bisect_left(classic, v)] += 1
    assert g.to_classic(cells) == want_classic
    b = g.to_exponential(cells, max_buckets=10**6)
    assert b.scale == g.scale
    pos: Counter[int] = Counter(_expected_index(v, g) for v in values if v > 0)
    neg: Counter[int] = Counter(_expected_index(v, g) for v in values if v < 0)
    assert {b.offset + k: c for k, c in enumerate(b.counts) if c} == dict(pos)
    assert {b.neg_offset + k: c for k, c in enumerate(b.neg_counts) if c} == dict(neg)
    assert b.zero == sum(v == 0 for v in values)
    small = g.to_exponential(cells, max_buckets=8)  # downscaling merges neighbours, per sign
    assert len(small.counts) <= 8 and len(small.neg_counts) <= 8
    assert sum(small.counts) == sum(pos.values()) and sum(small.neg_counts) == sum(neg.values())
    shift = g.scale - small.scale
    assert {small.offset + k: c for k, c in enumerate(small.counts) if c} == \
        dict(Counter(_expected_index(v, g) >> shift for v in values if v > 0))


def test_every_histogram_follows_the_histogram_kind() -> None:
    """One switch (`Producer.exponential`) decides for every histogram the probe exports."""
    from probes import metric_names as m

    reg = Registry()
    logits = np.random.default_rng(3).normal(size=(8, 5))

    @probes.probe(model="c", version="v", registry=reg)
    def clf(x: np.ndarray) -> np.ndarray:
        return logits

    @probes.probe(model="r", version="v", outputs=lambda out: {"score": out, "delta": -out}, registry=reg)
    def reg_(x: np.ndarray) -> float:
        return float(x.sum())

    @probes.probe(model="g", version="v", registry=reg)
    def gen(n: int) -> object:
        yield from range(n)

    for k in range(6):
        clf(np.zeros((8, 3)))
        reg_(np.full((2, 2), k - 2.5))
        list(gen(3))
    hists = {m.OTEL_LATENCY, m.OTEL_BATCH_SIZE, m.OTEL_OUTPUT_CONFIDENCE, m.OTEL_OUTPUT_ENTROPY,
             m.OTEL_OUTPUT_VALUE, m.OTEL_GENAI_TTFT, m.OTEL_GENAI_TPOT, m.OTEL_GENAI_DURATION}
    classic = {x.name: x for x in Producer(reg)() if x.name in hists}
    native = {x.name: x for x in Producer(reg, exponential=True)() if x.name in hists}
    assert set(classic) == set(native) == hists
    for name in hists:
        assert all(isinstance(p, HistogramDataPoint) for p in classic[name].data.data_points), name
        assert all(isinstance(p, ExponentialHistogramDataPoint) for p in native[name].data.data_points), name
        for c, n in zip(classic[name].data.data_points, native[name].data.data_points, strict=True):
            assert c.attributes == n.attributes and c.count == n.count and c.sum == n.sum, name
            assert n.zero_count + sum(n.positive.bucket_counts) + sum(n.negative.bucket_counts) == n.count
    deltas = [p for p in native[m.OTEL_OUTPUT_VALUE].data.data_points if p.attributes["feature"] == "delta"]
    assert sum(deltas[0].negative.bucket_counts) == 3 and sum(deltas[0].positive.bucket_counts) == 3
