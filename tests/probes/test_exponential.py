"""The recording grid serves both exports exactly (probes/exponential.py), and
`configure(histograms=...)` refuses what cannot work."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter

import numpy as np
import pytest

import probes
from probes.buckets import EXP_SCALE, LATENCY_BOUNDS_NS, LATENCY_GRID_NS
from probes.errors import ConfigError
from probes.exponential import GRID_CELLS, to_classic, to_exponential
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


def test_ttft_and_tpot_follow_the_histogram_kind() -> None:
    """A probed generator's time to first token and per output token export as either kind,
    from the same counts (their own classic bounds, probes.buckets.GENAI_TOKEN_BOUNDS_S)."""
    from probes import metric_names as m

    reg = Registry()

    @probes.probe(model="g", version="v", registry=reg)
    def gen(n: int) -> object:
        yield from range(n)

    for _ in range(5):
        list(gen(4))
    for exp in (False, True):
        got = {x.name: x for x in Producer(reg, exponential=exp)()}
        for name in (m.OTEL_GENAI_TTFT, m.OTEL_GENAI_TPOT):
            [p] = got[name].data.data_points
            assert p.count == 5
            if exp:
                assert sum(p.positive.bucket_counts) == 5
            else:
                assert len(p.explicit_bounds) == 169
