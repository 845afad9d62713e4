"""Build OpenTelemetry `Metric`s from the pre-aggregated probe state, once per export.

Names, units and descriptions here are the contract in DESIGN.md; the Prometheus exporter
translates them (`benchwatch.inference.duration` + `s` -> `benchwatch_inference_duration_seconds`).
All values are cumulative since the probe state was created (or reset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

from probes.buckets import (
    BATCH_BOUNDS,
    CONFIDENCE_BOUNDS,
    ENTROPY_BOUNDS,
    LATENCY_BOUNDS_S,
    VALUE_BOUNDS,
)
from probes.energy import EnergySampler
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
METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _m("benchwatch.inference.duration", "s", "Inference call duration, from call to return, by outcome"),
    _m("benchwatch.inference.errors", "", "Inference calls that raised, by exception type"),
    _m("benchwatch.inference.in_flight", "", "Inference calls currently running"),
    _m("benchwatch.inference.batch_size", "{item}", "Items per inference call"),
    _m("benchwatch.inference.energy", "J",
       "Device energy attributed to the model: each sampling interval's energy split by busy time"),
    _m("benchwatch.output.predicted_class", "", "Predicted top-1 classes, per class"),
    _m("benchwatch.output.confidence", "1", "Top-1 probability of classifier outputs"),
    _m("benchwatch.output.entropy", "", "Entropy (nats) of classifier output distributions"),
    _m("benchwatch.output.value", "", "Regression outputs and named output statistics, per feature"),
    _m("benchwatch.output.invalid", "", "Output rows the statistics could not use (NaN/inf), by reason"),
    _m("benchwatch.probe.dropped", "", "Sampled summaries dropped (full queue or failing sink), by reason"),
    _m("benchwatch.probe.faults", "", "Faults inside the probe kept away from the caller, by kind"),
    _m("hw.energy", "J", "Energy consumed by the device since the probe started"),
    _m("hw.power", "W", "Instantaneous device power as reported by the driver"),
    _m("hw.gpu.utilization", "1", "Fraction of time the GPU was busy over the last sample period"),
    _m("hw.gpu.memory.usage", "By", "GPU memory in use"),
    _m("hw.gpu.memory.limit", "By", "GPU memory size"),
)}


def _metric(name: str, data: Any) -> Metric:
    info = METRICS[name]
    return Metric(name=info.name, description=info.description, unit=info.unit, data=data)


def _hist(attrs: Mapping[str, str], start: int, now: int, counts: Sequence[int], total: float,
          bounds: Sequence[float]) -> HistogramDataPoint:
    return HistogramDataPoint(
        attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now, count=sum(counts),
        sum=total, bucket_counts=list(counts), explicit_bounds=list(bounds),
        # min/max are not tracked (not worth two compares per call); None leaves them unset in OTLP
        min=None, max=None, exemplars=[],  # type: ignore[arg-type]
    )


def _num(attrs: Mapping[str, str], start: int, now: int, value: float) -> NumberDataPoint:
    return NumberDataPoint(attributes=dict(attrs), start_time_unix_nano=start, time_unix_nano=now,
                           value=value, exemplars=[])


def _counter(name: str, points: list[NumberDataPoint], out: list[Metric], monotonic: bool = True) -> None:
    if points:
        out.append(_metric(name, Sum(data_points=points, aggregation_temporality=_CUM, is_monotonic=monotonic)))


def _histogram(name: str, points: list[HistogramDataPoint], out: list[Metric]) -> None:
    if points:
        out.append(_metric(name, Histogram(data_points=points, aggregation_temporality=_CUM)))


@dataclass
class Producer:
    """Callable handed to the export readers: returns this process's probe metrics."""

    registry: Registry
    worker_id: str | None = None
    energy: EnergySampler | None = None
    queue: SampleQueue | None = None
    clock: Callable[[], int] = field(default=time.time_ns)
    start_time_ns: int = field(default_factory=time.time_ns)

    def __call__(self) -> list[Metric]:
        now = self.clock()
        extra = {"worker_id": self.worker_id} if self.worker_id else {}
        dur: list[HistogramDataPoint] = []
        batch: list[HistogramDataPoint] = []
        conf: list[HistogramDataPoint] = []
        ent: list[HistogramDataPoint] = []
        vals: list[HistogramDataPoint] = []
        errors: list[NumberDataPoint] = []
        inflight: list[NumberDataPoint] = []
        classes: list[NumberDataPoint] = []
        invalid: list[NumberDataPoint] = []
        for st in self.registry.states():
            snap = st.snapshot()
            t = snap.totals
            base = {"model": snap.model, "model_version": snap.version, **extra}
            start = snap.start_time_ns
            dur.append(_hist({**base, "outcome": "ok"}, start, now, t.ok, t.ok_sum / 1e9, LATENCY_BOUNDS_S))
            if any(t.err):
                dur.append(_hist({**base, "outcome": "error"}, start, now, t.err, t.err_sum / 1e9,
                                 LATENCY_BOUNDS_S))
            for et, n in sorted(t.errors.items()):
                errors.append(_num({**base, "error_type": et}, start, now, n))
            inflight.append(_num(base, start, now, t.in_flight))
            if any(t.batch):
                batch.append(_hist(base, start, now, t.batch, t.batch_sum, BATCH_BOUNDS))
            for cls, n in sorted(t.classes.items()):
                classes.append(_num({**base, "predicted_class": cls}, start, now, n))
            if any(t.conf):
                conf.append(_hist(base, start, now, t.conf, t.conf_sum, CONFIDENCE_BOUNDS))
                ent.append(_hist(base, start, now, t.ent, t.ent_sum, ENTROPY_BOUNDS))
            for feat, (counts, total) in sorted(t.values.items()):
                vals.append(_hist({**base, "feature": feat}, start, now, counts, total, VALUE_BOUNDS))
            for reason, n in sorted(t.invalid.items()):
                invalid.append(_num({**base, "reason": reason}, start, now, n))
        out: list[Metric] = []
        _histogram("benchwatch.inference.duration", dur, out)
        _counter("benchwatch.inference.errors", errors, out)
        _counter("benchwatch.inference.in_flight", inflight, out, monotonic=False)
        _histogram("benchwatch.inference.batch_size", batch, out)
        _counter("benchwatch.output.predicted_class", classes, out)
        _histogram("benchwatch.output.confidence", conf, out)
        _histogram("benchwatch.output.entropy", ent, out)
        _histogram("benchwatch.output.value", vals, out)
        _counter("benchwatch.output.invalid", invalid, out)
        s0 = self.start_time_ns
        _counter("benchwatch.probe.faults", [
            _num({"fault": k, **extra}, s0, now, n) for k, n in sorted(self.registry.faults.counts().items())
        ], out)
        if self.queue is not None:
            _counter("benchwatch.probe.dropped", [
                _num({"reason": k, **extra}, s0, now, n) for k, n in sorted(self.queue.dropped.items())
            ], out)
        if self.energy is not None:
            self._energy(out, now, extra)
        return out

    def _energy(self, out: list[Metric], now: int, extra: Mapping[str, str]) -> None:
        assert self.energy is not None
        s0 = self.start_time_ns
        device_energy, attributed, latest = self.energy.snapshot()
        _counter("benchwatch.inference.energy", [
            _num({"model": m, "model_version": v, "hw_id": hw, "hw_type": kind, **extra}, s0, now, j)
            for (m, v, hw, kind), j in sorted(attributed.items())
        ], out)
        energy, power, util, used, limit = [], [], [], [], []
        for hw_id, r in sorted(latest.items()):
            attrs = {"hw_id": hw_id, "hw_type": r.hw_type, "hw_name": r.name, **extra}
            if hw_id in device_energy:
                energy.append(_num(attrs, s0, now, device_energy[hw_id]))
            if r.power_w is not None:
                power.append(_num(attrs, s0, now, r.power_w))
            if r.utilization is not None:
                util.append(_num(attrs, s0, now, r.utilization))
            if r.memory_used_bytes is not None:
                used.append(_num(attrs, s0, now, r.memory_used_bytes))
            if r.memory_limit_bytes is not None:
                limit.append(_num(attrs, s0, now, r.memory_limit_bytes))
        _counter("hw.energy", energy, out)
        if power:
            out.append(_metric("hw.power", Gauge(data_points=power)))
        if util:
            out.append(_metric("hw.gpu.utilization", Gauge(data_points=util)))
        _counter("hw.gpu.memory.usage", used, out, monotonic=False)
        _counter("hw.gpu.memory.limit", limit, out, monotonic=False)
