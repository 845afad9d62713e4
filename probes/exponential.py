"""Histogram counts on recording grids -> classic buckets or base-2 exponential buckets.

The hot path counts each observation in one cell of a grid (probes/buckets.py) that holds every
classic bound and every base-2 bound at the grid's scale: latency on `LATENCY_GRID_NS` (scale 5),
TTFT/TPOT and the generative request duration on their own classic bounds plus the same base-2
ones, batch size, confidence, entropy and output values on theirs. So both exports are exact
sums of cells: the classic histogram (Prometheus pull; 118 series per latency histogram) and the
OpenTelemetry exponential histogram (OTLP push, `Producer.exponential`; one Prometheus 3 native
histogram series). The exponential one is downscaled at export, as the OTel SDK's aggregation
does, until the occupied buckets fit `MAX_BUCKETS`; the cumulative range only grows, so the scale
only falls.

Latencies below 2**-20 s (~1 µs) count in the bucket just below that bound, and above 2**10 s
(~17 min) in the bucket just above it; likewise at the ends of the other grids.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Histogram,
    HistogramDataPoint,
)

from probes.buckets import (
    BATCH_BASE2,
    BATCH_BOUNDS,
    BATCH_GRID,
    BATCH_MIN_EXP,
    BATCH_SCALE,
    CONFIDENCE_BASE2,
    CONFIDENCE_BOUNDS,
    CONFIDENCE_GRID,
    CONFIDENCE_MIN_EXP,
    CONFIDENCE_SCALE,
    ENTROPY_BASE2,
    ENTROPY_BOUNDS,
    ENTROPY_GRID,
    ENTROPY_MIN_EXP,
    ENTROPY_SCALE,
    EXP_BOUNDS_NS,
    EXP_MIN_INDEX,
    EXP_SCALE,
    GENAI_DURATION_BOUNDS_NS,
    GENAI_DURATION_BOUNDS_S,
    GENAI_DURATION_GRID_NS,
    GENAI_TOKEN_BOUNDS_NS,
    GENAI_TOKEN_BOUNDS_S,
    GENAI_TOKEN_GRID_NS,
    LATENCY_BOUNDS_NS,
    LATENCY_BOUNDS_S,
    LATENCY_GRID_NS,
    VALUE_BASE2,
    VALUE_BOUNDS,
    VALUE_GRID,
    VALUE_MIN_EXP,
    VALUE_SCALE,
)

__all__ = [
    "BATCH",
    "CONFIDENCE",
    "ENTROPY",
    "GENAI_DURATION_GRID",
    "GENAI_TOKEN_GRID",
    "GRID_CELLS",
    "HISTOGRAM_KINDS",
    "LATENCY_GRID",
    "MAX_BUCKETS",
    "VALUE",
    "ExpBuckets",
    "Grid",
    "HistogramPoint",
    "histogram_data",
    "to_classic",
    "to_exponential",
]

HISTOGRAM_KINDS = ("classic", "exponential")  # configure(histograms=...)

# Prometheus 3 took 320 over OTLP with p50/p90/p99 within 0.5% of exact; 160 is the SDK default.
MAX_BUCKETS = 320
HistogramPoint = HistogramDataPoint | ExponentialHistogramDataPoint


class Grid:
    """A recording grid: `bounds_ns` (probes.buckets.grid_bounds) = the classic bounds
    `classic_ns` plus every base-2 bound `base2` (2**((min_index + k) / 2**scale), in recording
    units). Cell i holds (bounds_ns[i-1], bounds_ns[i]]; no classic or base-2 bound lies inside a
    cell, so each cell falls in exactly one bucket of either kind (or the zero bucket). Values
    past the base-2 range count in the bucket just outside it."""

    def __init__(self, classic_ns: Sequence[float], classic_s: Sequence[float], bounds_ns: Sequence[float],
                 base2: Sequence[float] = EXP_BOUNDS_NS, min_index: int = EXP_MIN_INDEX,
                 scale: int = EXP_SCALE) -> None:
        self.classic_s = tuple(classic_s)
        self.bounds_ns = tuple(bounds_ns)
        self.base2, self.min_index, self.scale = tuple(base2), min_index, scale
        self.cells = len(self.bounds_ns) + 1  # the last cell holds everything above the grid
        self._classic_of_cell = (*(bisect_left(classic_ns, g) for g in self.bounds_ns), len(classic_ns))
        # per cell: (sign, base-2 bucket index); sign 0 = the zero bucket
        exp = []
        for i, u in enumerate((*self.bounds_ns, math.inf)):
            if u == 0:
                exp.append((0, 0))
            elif u > 0:
                exp.append((1, min_index + bisect_left(base2, u) - 1))
            else:  # |v| in [|u|, |lower|): a negative bucket holds its lower bound, so only
                # a one-value cell {-2**k} (grid_bounds) maps to the bucket ending at 2**k
                alone = i > 0 and self.bounds_ns[i - 1] == math.nextafter(u, -math.inf)
                k = (bisect_left if alone else bisect_right)(base2, -u)
                exp.append((-1, min_index + k - 1))
        self._exp_of_cell = tuple(exp)

    def to_classic(self, cells: Sequence[int]) -> list[int]:
        """Per-bucket counts for the classic bounds (+Inf last)."""
        out = [0] * (len(self.classic_s) + 1)
        for i, c in enumerate(cells):
            if c:
                out[self._classic_of_cell[i]] += c
        return out

    def to_exponential(self, cells: Sequence[int], max_buckets: int = MAX_BUCKETS) -> ExpBuckets:
        """The counts as base-2 buckets at the highest scale <= the grid's that fits each sign's
        buckets in `max_buckets` (downscaling merges bucket pairs: index >> 1)."""
        zero = 0
        occupied: dict[int, list[tuple[int, int]]] = {1: [], -1: []}
        for i, c in enumerate(cells):
            if c:
                sign, j = self._exp_of_cell[i]
                if sign:
                    occupied[sign].append((j, c))
                else:
                    zero += c
        neg = sorted(occupied[-1])
        pos, shift = occupied[1], 0
        while any(o and (o[-1][0] >> shift) - (o[0][0] >> shift) + 1 > max_buckets for o in (pos, neg)):
            shift += 1
        p_off, p_counts = _merged(pos, shift)
        n_off, n_counts = _merged(neg, shift)
        return ExpBuckets(self.scale - shift if pos or neg else self.scale, p_off, p_counts, zero, n_off, n_counts)

    def point(self, attrs: Mapping[str, str], start: int, now: int, cells: Sequence[int], total_s: float,
              exponential: bool, exemplars: Sequence[Exemplar] = ()) -> HistogramPoint:
        """One OTel data point from grid counts: explicit buckets (classic) or base-2 buckets."""
        if not exponential:
            counts = self.to_classic(cells)
            return HistogramDataPoint(
                attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now, count=sum(counts),
                sum=total_s, bucket_counts=counts, explicit_bounds=list(self.classic_s),
                min=None, max=None, exemplars=list(exemplars),  # type: ignore[arg-type]  # None: unset in OTLP
            )
        b = self.to_exponential(cells)
        return ExponentialHistogramDataPoint(
            attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now,
            count=sum(b.counts) + sum(b.neg_counts) + b.zero, sum=total_s, scale=b.scale, zero_count=b.zero,
            positive=Buckets(b.offset, list(b.counts)), negative=Buckets(b.neg_offset, list(b.neg_counts)),
            flags=0, min=None, max=None, exemplars=list(exemplars),  # type: ignore[arg-type]
        )


def _merged(occupied: Sequence[tuple[int, int]], shift: int) -> tuple[int, tuple[int, ...]]:
    """(offset, counts) of sorted (bucket index, count) pairs at `shift` scales down."""
    if not occupied:
        return 0, ()
    offset = occupied[0][0] >> shift
    counts = [0] * ((occupied[-1][0] >> shift) - offset + 1)
    for j, c in occupied:
        counts[(j >> shift) - offset] += c
    return offset, tuple(counts)


@dataclass(frozen=True)
class ExpBuckets:
    """Positive buckets of an OTel exponential histogram: bucket `offset + k` counts the
    values in (2**((offset+k) / 2**scale), 2**((offset+k+1) / 2**scale)]."""

    scale: int
    offset: int
    counts: tuple[int, ...]
    zero: int = 0  # values in the zero bucket (exactly 0; <= 0 on grids without negatives)
    neg_offset: int = 0  # negative buckets: `neg_offset + k` counts |v| in the same ranges
    neg_counts: tuple[int, ...] = ()


LATENCY_GRID = Grid(LATENCY_BOUNDS_NS, LATENCY_BOUNDS_S, LATENCY_GRID_NS)
GENAI_TOKEN_GRID = Grid(GENAI_TOKEN_BOUNDS_NS, GENAI_TOKEN_BOUNDS_S, GENAI_TOKEN_GRID_NS)  # TTFT, TPOT
GENAI_DURATION_GRID = Grid(GENAI_DURATION_BOUNDS_NS, GENAI_DURATION_BOUNDS_S, GENAI_DURATION_GRID_NS)
# recorded in their own units (items, probability, nats, the output's values), not ns
BATCH = Grid(BATCH_BOUNDS, BATCH_BOUNDS, BATCH_GRID, BATCH_BASE2, BATCH_MIN_EXP * 2**BATCH_SCALE, BATCH_SCALE)
CONFIDENCE = Grid(CONFIDENCE_BOUNDS, CONFIDENCE_BOUNDS, CONFIDENCE_GRID, CONFIDENCE_BASE2,
                  CONFIDENCE_MIN_EXP * 2**CONFIDENCE_SCALE, CONFIDENCE_SCALE)
ENTROPY = Grid(ENTROPY_BOUNDS, ENTROPY_BOUNDS, ENTROPY_GRID, ENTROPY_BASE2, ENTROPY_MIN_EXP * 2**ENTROPY_SCALE,
               ENTROPY_SCALE)
VALUE = Grid(VALUE_BOUNDS, VALUE_BOUNDS, VALUE_GRID, VALUE_BASE2, VALUE_MIN_EXP * 2**VALUE_SCALE, VALUE_SCALE)
GRID_CELLS = LATENCY_GRID.cells
to_classic = LATENCY_GRID.to_classic
to_exponential = LATENCY_GRID.to_exponential


def histogram_data(points: Sequence[HistogramPoint], exponential: bool) -> Histogram | ExponentialHistogram:
    """The `Metric.data` for points made by `Grid.point` (cumulative, like every probe metric)."""
    if exponential:
        return ExponentialHistogram(data_points=list(points),  # type: ignore[arg-type]
                                    aggregation_temporality=AggregationTemporality.CUMULATIVE)
    return Histogram(data_points=list(points),  # type: ignore[arg-type]
                     aggregation_temporality=AggregationTemporality.CUMULATIVE)
