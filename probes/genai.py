"""Generative (streaming) request figures: per-thread counters and their OpenTelemetry metrics.

A probed generator records one request when its stream ends (see `probes.streaming`): time to
first token, time per output token, request duration by outcome, and input/output tokens. The
counters live in the calling thread's `Shard` (`shard.genai`, keyed by the GenAI operation
name), so they are merged, retired and reset with the probe's other counters; nothing here is
touched per token.

Names follow the OpenTelemetry GenAI semantic conventions (`gen_ai.server.*`, seconds); the
conventions have no server-side token counter, hence `benchwatch.genai.tokens`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    Sum,
)

from probes import metric_names as m
from probes.exponential import GENAI_DURATION_GRID, GENAI_TOKEN_GRID, HistogramPoint, histogram_data

__all__ = ["OUTCOMES", "GenAIPoints", "GenAIShard", "merge", "record"]

# How a stream ended: exhausted; raised; closed early by its consumer (client disconnect,
# `break`, `close()`, task cancelled). Indexes into GenAIShard.dur.
OUTCOMES = ("ok", "error", "cancelled")
OK, ERROR, CANCELLED = 0, 1, 2
_N_TOK = GENAI_TOKEN_GRID.cells  # TTFT/TPOT counts per recording-grid cell (probes/exponential.py)
_TOK_GRID_NS = GENAI_TOKEN_GRID.bounds_ns
_N_DUR = GENAI_DURATION_GRID.cells
_DUR_GRID_NS = GENAI_DURATION_GRID.bounds_ns
_CUM = AggregationTemporality.CUMULATIVE


class GenAIShard:
    """One thread's generative counters for one (model, version, operation)."""

    __slots__ = ("dur", "dur_sum", "in_tokens", "out_tokens", "tpot", "tpot_sum", "ttft", "ttft_sum")

    def __init__(self) -> None:
        self.ttft = [0] * _N_TOK  # counts per GENAI_TOKEN_GRID_NS cell
        self.ttft_sum = 0  # ns
        self.tpot = [0] * _N_TOK
        self.tpot_sum = 0.0  # ns (a quotient)
        self.dur = [[0] * _N_DUR for _ in OUTCOMES]
        self.dur_sum = [0] * len(OUTCOMES)  # ns
        self.in_tokens = 0
        self.out_tokens = 0

    def add(self, src: GenAIShard) -> None:
        _add(self.ttft, src.ttft)
        self.ttft_sum += src.ttft_sum
        _add(self.tpot, src.tpot)
        self.tpot_sum += src.tpot_sum
        for i in range(len(OUTCOMES)):
            _add(self.dur[i], src.dur[i])
            self.dur_sum[i] += src.dur_sum[i]
        self.in_tokens += src.in_tokens
        self.out_tokens += src.out_tokens


def _add(acc: list[int], src: list[int]) -> None:
    for i, v in enumerate(list(src)):
        if v:
            acc[i] += v


def record(genai: dict[str, GenAIShard], operation: str, ttft_ns: int, tpot_ns: float, dur_ns: int,
           outcome: int, in_tokens: int, out_tokens: int) -> None:
    """One finished stream into the owning thread's counters. `ttft_ns` < 0: no item came;
    `tpot_ns` < 0: fewer than two items (no time between tokens)."""
    g = genai.get(operation)
    if g is None:
        g = genai[operation] = GenAIShard()
    if ttft_ns >= 0:
        g.ttft[bisect_left(_TOK_GRID_NS, ttft_ns)] += 1
        g.ttft_sum += ttft_ns
    if tpot_ns >= 0:
        g.tpot[bisect_left(_TOK_GRID_NS, tpot_ns)] += 1
        g.tpot_sum += tpot_ns
    g.dur[outcome][bisect_left(_DUR_GRID_NS, dur_ns)] += 1
    g.dur_sum[outcome] += dur_ns
    g.in_tokens += in_tokens
    g.out_tokens += out_tokens


def merge(acc: dict[str, GenAIShard], src: dict[str, GenAIShard]) -> None:
    """Add `src` (another thread's `shard.genai`) into `acc` (export side)."""
    for op, g in list(src.items()):
        slot = acc.get(op)
        if slot is None:
            slot = acc[op] = GenAIShard()
        slot.add(g)


def _num(attrs: Mapping[str, str], start: int, now: int, value: float) -> NumberDataPoint:
    return NumberDataPoint(attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now,
                           value=value, exemplars=[])


class GenAIPoints:
    """Collects the data points of every probe state at one export, then emits the metrics."""

    def __init__(self, exponential: bool = False) -> None:
        self.exponential = exponential  # base-2 histograms (OTLP, histograms="exponential")
        self.ttft: list[HistogramPoint] = []
        self.tpot: list[HistogramPoint] = []
        self.dur: list[HistogramPoint] = []
        self.tokens: list[NumberDataPoint] = []

    def add(self, genai: Mapping[str, GenAIShard], base: Mapping[str, str], start: int, now: int) -> None:
        for op, g in sorted(genai.items()):
            attrs = {**base, "gen_ai.request.model": base["model"], "gen_ai.operation.name": op}
            # a series appears with the first stream that can have it (as errors do)
            if any(g.ttft):
                self.ttft.append(GENAI_TOKEN_GRID.point(attrs, start, now, g.ttft, g.ttft_sum / 1e9, self.exponential))
            if any(g.tpot):
                self.tpot.append(GENAI_TOKEN_GRID.point(attrs, start, now, g.tpot, g.tpot_sum / 1e9, self.exponential))
            for i, outcome in enumerate(OUTCOMES):
                if i == OK or any(g.dur[i]):
                    self.dur.append(GENAI_DURATION_GRID.point({**attrs, "outcome": outcome}, start, now, g.dur[i],
                                                              g.dur_sum[i] / 1e9, self.exponential))
            if g.in_tokens:  # only probes given input_tokens= count them
                self.tokens.append(_num({**attrs, "gen_ai.token.type": "input"}, start, now, g.in_tokens))
            self.tokens.append(_num({**attrs, "gen_ai.token.type": "output"}, start, now, g.out_tokens))

    def emit(self, out: list[Metric], metric: Any) -> None:
        """Append the metrics to `out`; `metric(name, data)` builds one (probes.metrics._metric)."""
        for name, points in ((m.OTEL_GENAI_TTFT, self.ttft), (m.OTEL_GENAI_TPOT, self.tpot),
                             (m.OTEL_GENAI_DURATION, self.dur)):
            if points:
                out.append(metric(name, histogram_data(points, self.exponential)))
        if self.tokens:
            out.append(metric(m.OTEL_GENAI_TOKENS,
                              Sum(data_points=self.tokens, aggregation_temporality=_CUM, is_monotonic=True)))
