"""Histogram bucket bounds, chosen once so every process and every dashboard agrees.

Latency: 20 bounds per decade (ratio 1.122) from 100 µs to 63 s. With Prometheus'
linear interpolation inside a bucket, p50/p90/p99 came out within 3.2% of the exact quantiles
on uniform, log-normal, exponential, bimodal and very narrow (σ = 1% of the mean) latency
distributions; 10 per decade gave up to 8%. 117 bounds cost 118 series per model version and
outcome — the price of truthful tails without native histograms (Prometheus 2.42 has them only
behind a feature flag and the OTel Prometheus exporter does not emit them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "BATCH_BOUNDS",
    "BATCH_GRID",
    "CONFIDENCE_GRID",
    "ENTROPY_GRID",
    "GENAI_DURATION_GRID_NS",
    "VALUE_GRID",
    "base2_bounds",
    "grid_bounds",
    "EXP_MAX_INDEX",
    "EXP_MIN_INDEX",
    "EXP_SCALE",
    "CONFIDENCE_BOUNDS",
    "ENTROPY_BOUNDS",
    "GENAI_DURATION_BOUNDS_NS",
    "GENAI_DURATION_BOUNDS_S",
    "GENAI_TOKEN_BOUNDS_NS",
    "GENAI_TOKEN_BOUNDS_S",
    "GENAI_TOKEN_GRID_NS",
    "GENAI_TOKEN_GRID_S",
    "LATENCY_BOUNDS_NS",
    "LATENCY_BOUNDS_S",
    "LATENCY_GRID_NS",
    "LATENCY_GRID_S",
    "VALUE_BOUNDS",
]


def _round3(x: float) -> float:
    return float(f"{x:.3g}")


LATENCY_BOUNDS_S: tuple[float, ...] = tuple(_round3(10 ** (k / 20)) for k in range(-80, 37))
# The hot path bisects integer nanoseconds from perf_counter_ns (no float conversion per call).
LATENCY_BOUNDS_NS: tuple[int, ...] = tuple(round(b * 1e9) for b in LATENCY_BOUNDS_S)

# What the hot path records latency on: one grid of integer-nanosecond bounds holding both the
# classic bounds above and every base-2 bound 2**(i / 2**EXP_SCALE) s from 2**-20 s (~1 µs) to
# 2**10 s (~17 min), so a single bisect per call serves both exports exactly: classic counts
# and OpenTelemetry exponential (Prometheus native) counts are sums of grid cells
# (probes/exponential.py). Scale 5 is a bucket ratio of 1.022: p99 within 1.01% through
# Prometheus 3 (tests/prometheus3/test_otlp_native.py; scale 6 within 0.51%). It costs ~3 more
# comparisons per bisect than the classic bounds alone, scale 6 ~4: 1.05-1.08 against 1.09-1.11
# times the classic-only added cost per call, the 10% target (benchmarks/histogram_export.py).
EXP_SCALE = 5
EXP_MIN_INDEX = -20 * 2**EXP_SCALE  # the base-2 bound 2**-20 s
EXP_MAX_INDEX = 10 * 2**EXP_SCALE  # the base-2 bound 2**10 s
# floor: an integer latency x is <= the exact bound b exactly when x <= floor(b)
EXP_BOUNDS_NS: tuple[int, ...] = tuple(
    int(2 ** (i / 2**EXP_SCALE) * 1e9) for i in range(EXP_MIN_INDEX, EXP_MAX_INDEX + 1))


def grid_bounds(classic: Sequence[float], base2: Sequence[float], *, zero: bool = False,
                signed: bool = False) -> tuple[Any, ...]:
    """A recording grid: the classic bounds plus the base-2 ones (probes/exponential.py), so
    every grid cell falls in one bucket of either kind. `zero`: a cell for values <= 0 (the
    exponential zero bucket). `signed`: the negated base-2 bounds too, a cell for exactly 0, and
    one for each negated power of two (classic buckets hold their upper bound, base-2 negative
    buckets their lower one: -1.0 is le="-1" but |v| in (0.5, 1], so it needs a cell of its own)."""
    out = set(classic) | set(base2)
    if zero or signed:
        out.add(0.0)
    if signed:
        out |= {-b for b in base2} | {math.nextafter(0.0, -math.inf)}
        out |= {math.nextafter(-b, -math.inf) for b in base2 if math.frexp(b)[0] == 0.5}
    return tuple(sorted(out))


def base2_bounds(scale: int, lo: int, hi: int) -> tuple[float, ...]:
    """Every base-2 bound 2**(i / 2**scale) from 2**lo to 2**hi."""
    return tuple(2.0 ** (i / 2**scale) for i in range(lo * 2**scale, hi * 2**scale + 1))


LATENCY_GRID_NS: tuple[int, ...] = grid_bounds(LATENCY_BOUNDS_NS, EXP_BOUNDS_NS)
LATENCY_GRID_S: tuple[float, ...] = tuple(b / 1e9 for b in LATENCY_GRID_NS)

BATCH_BOUNDS: tuple[float, ...] = tuple(float(2**k) for k in range(0, 13))  # 1 .. 4096 items
CONFIDENCE_BOUNDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05 .. 1.0
ENTROPY_BOUNDS: tuple[float, ...] = (
    tuple(round(0.05 * k, 2) for k in range(1, 21))  # fine near 0 (confident predictions)
    + tuple(round(1.0 + 0.25 * k, 2) for k in range(1, 25))  # up to 7 nats (~1000 classes)
)
# Regression values and named numbers from outputs=callable: symmetric powers of two, 2**-10 ..
# 2**20 (~1e-3 .. 1e6, ratio 2). Powers of two are base-2 bounds at every scale >= 0, so the
# exponential export's grid (VALUE_GRID) splits no classic bucket: the vectorized regression path
# adds up no more occupied cells than with these bounds alone (4 per decade, 1.78, cost a 64x16
# batch 1.2-1.35x the classic-only path: benchmarks/histogram_export.py).
_POS = tuple(2.0**k for k in range(-10, 21))
VALUE_BOUNDS: tuple[float, ...] = tuple(-b for b in reversed(_POS)) + (0.0,) + _POS
# Generative requests (probes.genai). Time to first token and time per output token: 50 bounds
# per decade (ratio 1.047) from 2 ms to 1 s, so histogram_quantile's linear interpolation inside
# a bucket is off by at most 4.7% whatever the distribution (20 per decade missed 5% on narrow
# ones: benchmarks/genai_quantiles.py); 10 per decade outside it, 100 µs .. 100 s. 169 bounds.
GENAI_TOKEN_BOUNDS_S: tuple[float, ...] = (
    tuple(_round3(10 ** (k / 10)) for k in range(-40, -27))
    + tuple(float(f"{10 ** (k / 50):.4g}") for k in range(-135, 1))
    + tuple(_round3(10 ** (k / 10)) for k in range(1, 21)))
GENAI_TOKEN_BOUNDS_NS: tuple[int, ...] = tuple(round(b * 1e9) for b in GENAI_TOKEN_BOUNDS_S)
# TTFT/TPOT are recorded on these bounds plus the base-2 ones, like latency (LATENCY_GRID_NS)
GENAI_TOKEN_GRID_NS: tuple[int, ...] = grid_bounds(GENAI_TOKEN_BOUNDS_NS, EXP_BOUNDS_NS)
GENAI_TOKEN_GRID_S: tuple[float, ...] = tuple(b / 1e9 for b in GENAI_TOKEN_GRID_NS)
# A whole generation can last minutes: 10 per decade, 1 ms .. 1000 s.
GENAI_DURATION_BOUNDS_S: tuple[float, ...] = tuple(_round3(10 ** (k / 10)) for k in range(-30, 31))
GENAI_DURATION_BOUNDS_NS: tuple[int, ...] = tuple(round(b * 1e9) for b in GENAI_DURATION_BOUNDS_S)
GENAI_DURATION_GRID_NS: tuple[int, ...] = grid_bounds(GENAI_DURATION_BOUNDS_NS, EXP_BOUNDS_NS)

# The other histograms' recording grids (exported as exponential histograms with
# histograms="exponential", like latency). Batch sizes: the classic bounds are the base-2 ones
# at scale 0 (extended to 2**20 items), plus a zero cell. Confidence and entropy: scale 4 (ratio
# 1.044, finer than the classic 0.05 steps near 1) from 2**-20. Values: scale 0, the classic
# bounds themselves (2**-10 .. 2**20 on both sides of 0): every cell the vectorized regression
# path adds up costs, so the grid adds only a zero cell and one per negated power of two.
BATCH_SCALE, BATCH_MIN_EXP, BATCH_BASE2 = 0, 0, base2_bounds(0, 0, 20)
CONFIDENCE_SCALE, CONFIDENCE_MIN_EXP, CONFIDENCE_BASE2 = 4, -20, base2_bounds(4, -20, 0)
ENTROPY_SCALE, ENTROPY_MIN_EXP, ENTROPY_BASE2 = 4, -20, base2_bounds(4, -20, 4)
VALUE_SCALE, VALUE_MIN_EXP, VALUE_BASE2 = 0, -10, base2_bounds(0, -10, 20)
BATCH_GRID: tuple[float, ...] = grid_bounds(BATCH_BOUNDS, BATCH_BASE2, zero=True)
CONFIDENCE_GRID: tuple[float, ...] = grid_bounds(CONFIDENCE_BOUNDS, CONFIDENCE_BASE2, zero=True)
ENTROPY_GRID: tuple[float, ...] = grid_bounds(ENTROPY_BOUNDS, ENTROPY_BASE2, zero=True)
VALUE_GRID: tuple[float, ...] = grid_bounds(VALUE_BOUNDS, VALUE_BASE2, signed=True)
