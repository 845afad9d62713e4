"""Build OpenTelemetry `Metric`s from the pre-aggregated probe state, once per export.

Names (`probes.metric_names`), units and descriptions here are the contract in docs/probes.md;
the Prometheus exporter translates them (`benchwatch.inference.duration` + `s` ->
`benchwatch_inference_duration_seconds`).
All values are cumulative since the probe state was created (or reset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    NumberDataPoint,
    Sum,
)

from probes import metric_names as m
from probes.energy import EnergySampler
from probes.exemplars import as_exemplars
from probes.exponential import (
    BATCH,
    CONFIDENCE,
    ENTROPY,
    LATENCY_GRID,
    VALUE,
    HistogramPoint,
    histogram_data,
)
from probes.genai import GenAIPoints
from probes.sampling import SampleQueue
from probes.state import Registry

__all__ = ["METRICS", "MetricInfo", "Producer"]

_CUM = AggregationTemporality.CUMULATIVE


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    description: str


def _m(name: str, unit: str, description: str) -> MetricInfo:
    return MetricInfo(name, unit, description)


# Every metric the probe exports, with its help text (the Prometheus `# HELP` line).
METRICS: dict[str, MetricInfo] = {info.name: info for info in (
    _m(m.OTEL_LATENCY, "s", "Inference call duration, from call to return, by outcome"),
    # annotation units and dotted attribute keys from the OTel semantic conventions; Prometheus
    # drops `{...}` units and turns `.` into `_`, so its names and labels stay as they were
    _m(m.OTEL_ERRORS, "{error}", "Inference calls that raised, by exception type"),
    _m(m.OTEL_IN_FLIGHT, "{request}", "Inference calls currently running"),
    _m(m.OTEL_BATCH_SIZE, "{item}", "Items per inference call"),
    _m(m.OTEL_ENERGY, "J",
       "Device energy above idle attributed to the model: each sampling interval's energy above "
       "the device's idle power, split over the models running on it by busy time"),
    _m(m.OTEL_GENAI_TTFT, "s", "Time to first token of streamed requests: from the call (a generator's "
       "first next()) to its first item"),
    _m(m.OTEL_GENAI_TPOT, "s", "Time per output token of streamed requests: (last item - first item) / "
       "output tokens after the first item"),
    _m(m.OTEL_GENAI_DURATION, "s", "Streamed request duration, from the call to the end of the stream, by outcome"),
    _m(m.OTEL_GENAI_TOKENS, "{token}", "Tokens of streamed requests, by gen_ai.token.type (input, output)"),
    _m(m.OTEL_OUTPUT_CLASS, "", "Predicted top-1 classes, per class"),
    _m(m.OTEL_OUTPUT_CONFIDENCE, "1", "Top-1 probability of classifier outputs"),
    _m(m.OTEL_OUTPUT_ENTROPY, "", "Entropy (nats) of classifier output distributions"),
    _m(m.OTEL_OUTPUT_VALUE, "", "Regression outputs and named output statistics, per feature"),
    _m(m.OTEL_OUTPUT_INVALID, "", "Output rows the statistics did not use (NaN/inf, or too wide to read on this call), by reason"),
    _m(m.OTEL_DROPPED, "", "Sampled summaries dropped (full queue, failing sink, too-wide output), by reason"),
    _m(m.OTEL_FAULTS, "", "Faults inside the probe kept away from the caller, by kind"),
    _m(m.OTEL_HW_ENERGY, "J", "Energy consumed by the device since the probe started"),
    _m(m.OTEL_DEVICE_IDLE_ENERGY, "J",
       "Device energy attributed to no model (idle draw); hw.energy = this + the models' energy"),
    _m(m.OTEL_HW_POWER, "W", "Instantaneous device power as reported by the driver"),
    _m(m.OTEL_HW_UTILIZATION, "1", "Fraction of time the GPU was busy over the last sample period"),
    _m(m.OTEL_HW_MEMORY, "By", "GPU memory in use"),
    _m(m.OTEL_HW_MEMORY_LIMIT, "By", "GPU memory size"),
)}


def _metric(name: str, data: Any) -> Metric:
    info = METRICS[name]
    return Metric(name=info.name, description=info.description, unit=info.unit, data=data)


def _num(attrs: Mapping[str, str], start: int, now: int, value: float) -> NumberDataPoint:
    return NumberDataPoint(attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now,
                           value=value, exemplars=[])


def _counter(name: str, points: list[NumberDataPoint], out: list[Metric], monotonic: bool = True) -> None:
    if points:
        out.append(_metric(name, Sum(data_points=points, aggregation_temporality=_CUM, is_monotonic=monotonic)))


def _histogram(name: str, points: list[HistogramPoint], out: list[Metric], exponential: bool) -> None:
    if points:
        out.append(_metric(name, histogram_data(points, exponential)))


@dataclass
class Producer:
    """Callable handed to the export readers: returns this process's probe metrics."""

    registry: Registry
    worker_id: str | None = None
    energy: EnergySampler | None = None
    queue: SampleQueue | None = None
    clock: Callable[[], int] = field(default=time.time_ns)
    start_time_ns: int = field(default_factory=time.time_ns)
    # every histogram as an OTel exponential histogram (Prometheus 3 native: one series each)
    # instead of explicit buckets; for OTLP push (configure(histograms="exponential"))
    exponential: bool = False

    def __call__(self) -> list[Metric]:
        now = self.clock()
        extra = {"worker_id": self.worker_id} if self.worker_id else {}
        dur: list[HistogramPoint] = []
        exp = self.exponential
        batch: list[HistogramPoint] = []
        conf: list[HistogramPoint] = []
        ent: list[HistogramPoint] = []
        vals: list[HistogramPoint] = []
        errors: list[NumberDataPoint] = []
        inflight: list[NumberDataPoint] = []
        classes: list[NumberDataPoint] = []
        invalid: list[NumberDataPoint] = []
        genai = GenAIPoints(exponential=exp)
        for st in self.registry.states():
            snap = st.snapshot()
            t = snap.totals
            base = {"model": snap.model, "model_version": snap.version, **extra}
            if st.slice is not None:  # a slice of the model's calls (probes/slices.py)
                base["slice"] = st.slice
            start = snap.start_time_ns
            dur.append(LATENCY_GRID.point({**base, "outcome": "ok"}, start, now, t.ok, t.ok_sum / 1e9, exp,
                                          as_exemplars(t.exemplar)))
            if any(t.err):
                dur.append(LATENCY_GRID.point({**base, "outcome": "error"}, start, now, t.err, t.err_sum / 1e9, exp))
            for et, n in sorted(t.errors.items()):
                errors.append(_num({**base, "error.type": et}, start, now, n))
            inflight.append(_num(base, start, now, t.in_flight))
            if any(t.batch):
                batch.append(BATCH.point(base, start, now, t.batch, t.batch_sum, exp))
            for cls, n in sorted(t.classes.items()):
                classes.append(_num({**base, "predicted_class": cls}, start, now, n))
            if any(t.conf):
                conf.append(CONFIDENCE.point(base, start, now, t.conf, t.conf_sum, exp))
                ent.append(ENTROPY.point(base, start, now, t.ent, t.ent_sum, exp))
            for feat, (counts, total) in sorted(t.values.items()):
                vals.append(VALUE.point({**base, "feature": feat}, start, now, counts, total, exp))
            for reason, n in sorted(t.invalid.items()):
                invalid.append(_num({**base, "reason": reason}, start, now, n))
            if t.genai:
                genai.add(t.genai, base, start, now)
        out: list[Metric] = []
        if dur:
            out.append(_metric(m.OTEL_LATENCY, histogram_data(dur, exp)))
        _counter(m.OTEL_ERRORS, errors, out)
        _counter(m.OTEL_IN_FLIGHT, inflight, out, monotonic=False)
        _histogram(m.OTEL_BATCH_SIZE, batch, out, exp)
        _counter(m.OTEL_OUTPUT_CLASS, classes, out)
        _histogram(m.OTEL_OUTPUT_CONFIDENCE, conf, out, exp)
        _histogram(m.OTEL_OUTPUT_ENTROPY, ent, out, exp)
        _histogram(m.OTEL_OUTPUT_VALUE, vals, out, exp)
        _counter(m.OTEL_OUTPUT_INVALID, invalid, out)
        genai.emit(out, _metric)
        s0 = self.start_time_ns
        _counter(m.OTEL_FAULTS, [
            _num({"fault": k, **extra}, s0, now, n) for k, n in sorted(self.registry.faults.counts().items())
        ], out)
        if self.queue is not None:
            _counter(m.OTEL_DROPPED, [
                _num({"reason": k, **extra}, s0, now, n) for k, n in sorted(self.queue.dropped.items())
            ], out)
        if self.energy is not None:
            self._energy(out, now, extra)
        return out

    def _energy(self, out: list[Metric], now: int, extra: Mapping[str, str]) -> None:
        assert self.energy is not None
        s0 = self.start_time_ns
        snap = self.energy.snapshot()
        _counter(m.OTEL_ENERGY, [
            _num({"model": m, "model_version": v, "hw.id": hw, "hw.type": kind, **extra}, s0, now, j)
            for (m, v, hw, kind), j in sorted(snap.attributed.items())
        ], out)
        energy, idle, power, util, used, limit = [], [], [], [], [], []
        for hw_id, r in sorted(snap.latest.items()):
            attrs = {"hw.id": hw_id, "hw.type": r.hw_type, "hw.name": r.name, **extra}
            if hw_id in snap.device:
                energy.append(_num(attrs, s0, now, snap.device[hw_id]))
                idle.append(_num(attrs, s0, now, snap.idle.get(hw_id, 0.0)))
            if r.power_w is not None:
                power.append(_num(attrs, s0, now, r.power_w))
            if r.utilization is not None:
                util.append(_num(attrs, s0, now, r.utilization))
            if r.memory_used_bytes is not None:
                used.append(_num(attrs, s0, now, r.memory_used_bytes))
            if r.memory_limit_bytes is not None:
                limit.append(_num(attrs, s0, now, r.memory_limit_bytes))
        _counter(m.OTEL_HW_ENERGY, energy, out)
        _counter(m.OTEL_DEVICE_IDLE_ENERGY, idle, out)
        if power:
            out.append(_metric(m.OTEL_HW_POWER, Gauge(data_points=power)))
        if util:
            out.append(_metric(m.OTEL_HW_UTILIZATION, Gauge(data_points=util)))
        _counter(m.OTEL_HW_MEMORY, used, out, monotonic=False)
        _counter(m.OTEL_HW_MEMORY_LIMIT, limit, out, monotonic=False)
