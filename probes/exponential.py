"""Latency counts on a recording grid -> classic buckets or base-2 exponential buckets.

The hot path counts each latency in one cell of `LATENCY_GRID_NS` (probes/buckets.py), a grid
that holds every classic bound and every base-2 bound at `EXP_SCALE` (TTFT and TPOT likewise on
`GENAI_TOKEN_GRID_NS`, their own classic bounds plus the base-2 ones). So both exports are exact
sums of cells: the classic histogram (Prometheus pull, 117 bounds) and the OpenTelemetry
exponential histogram (OTLP push; a Prometheus 3 native histogram, one series instead of 118).
The exponential one is downscaled at export, as the OTel SDK's aggregation does, until the
occupied buckets fit `MAX_BUCKETS`; the cumulative range only grows, so the scale only falls.

Latencies below 2**-20 s (~1 µs) count in the bucket just below that bound, and above 2**10 s
(~17 min) in the bucket just above it.
"""

from __future__ import annotations

from bisect import bisect_left
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
    EXP_BOUNDS_NS,
    EXP_MIN_INDEX,
    EXP_SCALE,
    GENAI_TOKEN_BOUNDS_NS,
    GENAI_TOKEN_BOUNDS_S,
    GENAI_TOKEN_GRID_NS,
    LATENCY_BOUNDS_NS,
    LATENCY_BOUNDS_S,
    LATENCY_GRID_NS,
)

__all__ = [
    "GENAI_TOKEN_GRID",
    "GRID_CELLS",
    "LATENCY_GRID",
    "HISTOGRAM_KINDS",
    "MAX_BUCKETS",
    "ExpBuckets",
    "Grid",
    "latency_data",
    "latency_point",
    "to_classic",
    "to_exponential",
]

HISTOGRAM_KINDS = ("classic", "exponential")  # configure(histograms=...)

# Prometheus 3 took 320 over OTLP with p50/p90/p99 within 0.5% of exact; 160 is the SDK default.
MAX_BUCKETS = 320
LatencyPoint = HistogramDataPoint | ExponentialHistogramDataPoint


class Grid:
    """A recording grid: `bounds_ns` = the classic bounds `classic_ns` plus every base-2 bound
    at EXP_SCALE. Cell i holds the integers (bounds_ns[i-1], bounds_ns[i]]; no classic or base-2
    bound lies inside a cell, so each cell falls in exactly one bucket of either kind."""

    def __init__(self, classic_ns: Sequence[int], classic_s: Sequence[float], bounds_ns: Sequence[int]) -> None:
        self.classic_s = tuple(classic_s)
        self.bounds_ns = tuple(bounds_ns)
        self.cells = len(self.bounds_ns) + 1  # the last cell holds everything above the grid
        self._classic_of_cell = (*(bisect_left(classic_ns, g) for g in self.bounds_ns), len(classic_ns))
        self._exp_of_cell = (*(EXP_MIN_INDEX + bisect_left(EXP_BOUNDS_NS, g) - 1 for g in self.bounds_ns),
                             EXP_MIN_INDEX + len(EXP_BOUNDS_NS) - 1)

    def to_classic(self, cells: Sequence[int]) -> list[int]:
        """Per-bucket counts for the classic bounds (+Inf last)."""
        out = [0] * (len(self.classic_s) + 1)
        for i, c in enumerate(cells):
            if c:
                out[self._classic_of_cell[i]] += c
        return out

    def to_exponential(self, cells: Sequence[int], max_buckets: int = MAX_BUCKETS) -> ExpBuckets:
        """The counts as base-2 buckets at the highest scale <= EXP_SCALE that fits them in
        `max_buckets` (downscaling merges bucket pairs: index >> 1)."""
        occupied = [(self._exp_of_cell[i], c) for i, c in enumerate(cells) if c]
        if not occupied:
            return ExpBuckets(EXP_SCALE, 0, ())
        lo, hi = occupied[0][0], occupied[-1][0]
        shift = 0
        while (hi >> shift) - (lo >> shift) + 1 > max_buckets:
            shift += 1
        offset = lo >> shift
        counts = [0] * ((hi >> shift) - offset + 1)
        for j, c in occupied:
            counts[(j >> shift) - offset] += c
        return ExpBuckets(EXP_SCALE - shift, offset, tuple(counts))

    def point(self, attrs: Mapping[str, str], start: int, now: int, cells: Sequence[int], total_s: float,
              exponential: bool, exemplars: Sequence[Exemplar] = ()) -> LatencyPoint:
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
            attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now, count=sum(b.counts),
            sum=total_s, scale=b.scale, zero_count=0, positive=Buckets(b.offset, list(b.counts)),
            negative=Buckets(0, []), flags=0, min=None, max=None, exemplars=list(exemplars),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ExpBuckets:
    """Positive buckets of an OTel exponential histogram: bucket `offset + k` counts the
    values in (2**((offset+k) / 2**scale), 2**((offset+k+1) / 2**scale)]."""

    scale: int
    offset: int
    counts: tuple[int, ...]


LATENCY_GRID = Grid(LATENCY_BOUNDS_NS, LATENCY_BOUNDS_S, LATENCY_GRID_NS)
GENAI_TOKEN_GRID = Grid(GENAI_TOKEN_BOUNDS_NS, GENAI_TOKEN_BOUNDS_S, GENAI_TOKEN_GRID_NS)  # TTFT, TPOT
GRID_CELLS = LATENCY_GRID.cells
to_classic = LATENCY_GRID.to_classic
to_exponential = LATENCY_GRID.to_exponential
latency_point = LATENCY_GRID.point


def latency_data(points: Sequence[LatencyPoint], exponential: bool) -> Histogram | ExponentialHistogram:
    """The `Metric.data` for points made by `latency_point` (cumulative, like every probe metric)."""
    if exponential:
        return ExponentialHistogram(data_points=list(points),  # type: ignore[arg-type]
                                    aggregation_temporality=AggregationTemporality.CUMULATIVE)
    return Histogram(data_points=list(points),  # type: ignore[arg-type]
                     aggregation_temporality=AggregationTemporality.CUMULATIVE)
