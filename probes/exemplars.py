"""Trace exemplars on the latency histogram: the trace of a recent call, where a span was active.

Opt-in (`configure(exemplars=True)`): reading the active span through the OpenTelemetry API costs
about as much per call as the rest of the probe's hot path (benchmarks/probe_overhead.py), so it
is off unless asked for. Each thread's shard
keeps its latest successful call that ran inside a valid, sampled span; at export the latest of all
shards rides on the `outcome="ok"` data point as an OpenTelemetry exemplar (over OTLP, Prometheus
3 with `--enable-feature=exemplar-storage` keeps it; the Prometheus text format carries none).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.trace import INVALID_SPAN, TraceFlags, get_current_span

__all__ = ["as_exemplars", "note"]

# (latency ns, trace id, span id, wall-clock ns)
Noted = tuple[int, int, int, int]
_SAMPLED = TraceFlags.SAMPLED


def note(sh: Any, dt_ns: int) -> None:
    """Keep this call as the shard's exemplar if it ran inside a valid, sampled span."""
    span = get_current_span()
    if span is INVALID_SPAN:  # no span active
        return
    ctx = span.get_span_context()
    trace_id, span_id = ctx.trace_id, ctx.span_id
    # valid (SpanContext.is_valid: 0 is invalid, without reading the ids twice) and sampled: an
    # unsampled trace is never stored, so its exemplar would link to nothing
    if trace_id and span_id and ctx.trace_flags & _SAMPLED:
        sh.exemplar = (dt_ns, trace_id, span_id, time.time_ns())


def latest(a: Noted | None, b: Noted | None) -> Noted | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a[3] >= b[3] else b


def as_exemplars(noted: Noted | None) -> list[Exemplar]:
    if noted is None:
        return []
    dt_ns, trace_id, span_id, at = noted
    return [Exemplar(filtered_attributes={}, value=dt_ns / 1e9, time_unix_nano=at,
                     span_id=span_id, trace_id=trace_id)]
