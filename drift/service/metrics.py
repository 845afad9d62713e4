"""The drift service's metrics, exported through OpenTelemetry on its own Prometheus endpoint.

Everything is an observable instrument read from the latest `ServiceFigures` at scrape time, so a
series disappears when its window or baseline does (a synchronous gauge would keep the last
value forever). Names (`probes.metric_names`; contract in docs/probes.md), OTel -> Prometheus:

- `benchwatch.drift.score|threshold|p_value|detected` {model, model_version, feature, test}
  (`p_value` is Holm-adjusted across the model's features)
- `benchwatch.drift.window.samples` {model, model_version, feature}
- `benchwatch.drift.since_timestamp` (s) {model, model_version, feature, test}: when the current
  drift episode began (only while detected) -> `benchwatch_drift_since_timestamp_seconds`
- `benchwatch.drift.last_evaluation_timestamp` (s) -> `..._seconds`
- `benchwatch.drift.reference.samples` {model, model_version, feature}: values in the baseline's
  reference; `benchwatch.drift.reference.small`: 1 where that is too few for the stated
  false-alarm rate (`drift.reference_size`), else 0
- `benchwatch.baseline.figure` {model, model_version, figure, point, scenario}: the benchmark's
  figures (`latency_p99_s`, `energy_per_inference_j`, ...), each at its measurement point
  (`model_call`, `http_client`, ...) and scenario, for the regression rules to compare with
- `benchwatch.baseline.load_qps` {model, model_version, point, scenario}: the request rate each
  scenario held (absent where not meaningful), so rules compare at like request rates
- `benchwatch.baseline.refused`: baselines in the directory that failed to load
- `benchwatch.accuracy.estimated` {model, model_version, method} and `benchwatch.accuracy.realized`
  {model, model_version}, `benchwatch.accuracy.labels` (labelled samples in the realized window)
- `benchwatch.ingest.samples` (counter) {outcome: accepted|duplicate|rejected, reason}
- `benchwatch.alerts.received` (counter) {status}
- `benchwatch.alerts.refused` (counter) {reason}: webhook requests refused
- with Kafka on (`benchwatch drift serve --kafka`), the consumer's `stats()`:
  `benchwatch.kafka.consumer.lag` ({record}, gauge; absent while unknown, e.g. broker down),
  `.poison` {reason}, `.commit_failures`, `.restored_models`, `.commits`, `.rebalances`,
  `.records`, `.restarts`, `.rejoins` (counters) -> `benchwatch_kafka_consumer_lag`,
  `benchwatch_kafka_consumer_poison_total`, ...; `benchwatch.kafka.consumer.assigned_partitions`
  (this worker's) and `.group_unowned_partitions` (partitions of the topic no member of the
  group owns; absent until known) gauges; absent without Kafka.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from collector import IngestReport
from drift.figures import Figure
from probes import metric_names as names
from probes._version import __version__
from probes.export import PrometheusEndpoint

Attrs = Mapping[str, str]


@dataclass(frozen=True)
class FeatureFigures:
    """One feature's latest drift figures (attributes: model, model_version, feature, test)."""

    model: str
    version: str
    feature: str
    test: str
    score: float
    threshold: float
    p_value: float | None
    detected: bool
    window_samples: int
    since: float | None


@dataclass(frozen=True)
class ServiceFigures:
    """Everything the service's gauges show, from one evaluation (swapped whole by `publish`)."""

    features: tuple[FeatureFigures, ...] = ()
    window_samples: Mapping[tuple[str, str, str], int] = field(
        default_factory=lambda: MappingProxyType({}))
    # (model, version, figure, point, scenario) -> the baseline's figure
    baseline_figures: Mapping[tuple[str, str, str, str, str], Figure] = field(
        default_factory=lambda: MappingProxyType({}))
    estimated_accuracy: Mapping[tuple[str, str, str], float] = field(
        default_factory=lambda: MappingProxyType({}))
    realized_accuracy: Mapping[tuple[str, str], tuple[float, int]] = field(
        default_factory=lambda: MappingProxyType({}))
    # (model, version, slice) -> (accuracy, labels), slices named with the labels
    realized_slice_accuracy: Mapping[tuple[str, str, str], tuple[float, int]] = field(
        default_factory=lambda: MappingProxyType({}))
    refused_baselines: int = 0
    evaluated_at: float | None = None
    # (model, version, feature) -> (reference values, values needed: drift.reference_size)
    references: Mapping[tuple[str, str, str], tuple[int, int]] = field(
        default_factory=lambda: MappingProxyType({}))


def _constant(value: float) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """A gauge callback that always observes `value` (a configured price)."""
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value)]
    return callback


class ServiceMetrics:
    """Owns the MeterProvider and endpoint; `publish(snapshot)` swaps what scrapes see."""

    def __init__(self, host: str, port: int, totals: Callable[[], IngestReport],
                 alert_counts: Callable[[], Mapping[str, int]],
                 service_name: str = "benchwatch-drift",
                 kafka_stats: Callable[[], Any] | None = None,
                 alert_refusals: Callable[[], Mapping[str, int]] | None = None,
                 prices: tuple[float | None, float | None] = (None, None)) -> None:
        """`prices`: the configured ($ per hour of a serving process, $ per kWh), each exported
        as a constant gauge when set (the scorecard rules turn them into $ per 1 000
        inferences). `kafka_stats()` returns the Kafka consumer's `collector.kafka.consumer.ConsumerStats`, or
        None while there is no consumer (read at each scrape: it may be attached later)."""
        self._snapshot = ServiceFigures()
        self._lock = threading.Lock()
        self._totals = totals
        self._alert_counts = alert_counts
        self._alert_refusals = alert_refusals or (lambda: {})
        self._kafka_stats = kafka_stats or (lambda: None)
        self.endpoint = PrometheusEndpoint(
            host, port, port_option="--port PORT (benchwatch drift serve; "
            "ServiceConfig.metrics_port; 0: any free port)")
        self.provider = MeterProvider(
            metric_readers=[self.endpoint.reader],
            resource=Resource.create({"service.name": service_name}))
        meter = self.provider.get_meter("benchwatch.drift", __version__)
        gauge = meter.create_observable_gauge
        gauge(names.OTEL_DRIFT_SCORE, [self._per_feature(lambda f: f.score)],
              description="drift score of the live window against the baseline")
        gauge(names.OTEL_DRIFT_THRESHOLD, [self._per_feature(lambda f: f.threshold)],
              description="score above which the feature counts as drifted")
        gauge(names.OTEL_DRIFT_P_VALUE, [self._per_feature(lambda f: f.p_value)],
              description="p-value, Holm-adjusted across the model's features")
        gauge(names.OTEL_DRIFT_DETECTED, [self._per_feature(lambda f: float(f.detected))],
              description="1 when the feature drifted (significant and large enough)")
        gauge(names.OTEL_DRIFT_SINCE, [self._per_feature(lambda f: f.since)],
              unit="s", description="unix time the current drift episode began")
        gauge(names.OTEL_DRIFT_WINDOW, [self._windows],
              description="values in the live window")
        gauge(names.OTEL_DRIFT_EVALUATED, [self._evaluated], unit="s",
              description="unix time of the last evaluation")
        gauge(names.OTEL_DRIFT_REFERENCE_SAMPLES, [self._reference(lambda n, _: n)],
              description="values in the baseline's reference")
        gauge(names.OTEL_DRIFT_REFERENCE_SMALL, [self._reference(lambda n, need: n < need)],
              description="1 when the reference is too small for the stated false-alarm rate")
        gauge(names.OTEL_BASELINE_FIGURE, [self._figures],
              description="the baseline's benchmark figures (latency_p99_s, ...) by "
                          "measurement point and scenario")
        gauge(names.OTEL_BASELINE_LOAD, [self._loads],
              description="request rate (per second) a baseline scenario held")
        gauge(names.OTEL_BASELINE_REFUSED, [self._refused],
              description="baseline files that failed to load")
        for otel, price, what in ((names.OTEL_PRICE_PER_HOUR, prices[0],
                                   "what one serving process costs per hour (USD)"),
                                  (names.OTEL_PRICE_PER_KWH, prices[1], "USD per kWh")):
            if price is not None:
                gauge(otel, [_constant(float(price))], description=what)
        gauge(names.OTEL_ACCURACY_ESTIMATED, [self._estimated],
              description="accuracy estimated from confidences (CBPE), no labels needed")
        gauge(names.OTEL_ACCURACY_REALIZED, [self._realized(0)],
              description="accuracy on samples whose labels arrived")
        gauge(names.OTEL_ACCURACY_LABELS, [self._realized(1)],
              description="labelled samples behind the realized accuracy")
        meter.create_observable_counter(names.OTEL_INGEST, [self._ingest],
                                        description="samples received, by outcome and reason")
        meter.create_observable_counter(names.OTEL_ALERTS_RECEIVED, [self._alerts],
                                        description="Alertmanager notifications received")
        meter.create_observable_counter(
            names.OTEL_ALERTS_REFUSED, [self._refused_alerts],
            description="webhook requests refused: unauthorized, bad_signature, no_timestamp, "
                        "stale, replayed")
        gauge(names.OTEL_KAFKA_LAG, [self._kafka_lag], unit="{record}",
              description="records between the consumer's position and the log end")
        gauge(names.OTEL_KAFKA_ASSIGNED, [self._kafka_gauge(lambda s: len(s.assigned))],
              unit="{partition}", description="partitions this Kafka consumer owns")
        gauge(names.OTEL_KAFKA_GROUP_UNOWNED, [self._kafka_gauge(lambda s: s.group_unowned)],
              unit="{partition}",
              description="partitions of the topic that no member of the consumer group owns")
        counter = meter.create_observable_counter
        counter(names.OTEL_KAFKA_POISON, [self._kafka_poison],
                description="unreadable Kafka records skipped, by reason")
        for name, what in (("commit_failures", "offset commits that failed (retried)"),
                           ("restored_models", "model windows restored from the state topic"),
                           ("commits", "offset commits"),
                           ("rebalances", "consumer group rebalances seen"),
                           ("records", "Kafka records read (each a batch of samples)"),
                           ("restarts", "times the consumer loop failed and started afresh"),
                           ("rejoins", "times the consumer rejoined its group because "
                                       "partitions were left unowned")):
            counter(names.OTEL_KAFKA_COUNTERS[name], [self._kafka_count(name)], description=what)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def port(self) -> int:
        return self.endpoint.port

    def publish(self, snapshot: ServiceFigures) -> None:
        with self._lock:
            self._snapshot = snapshot

    @property
    def snapshot(self) -> ServiceFigures:
        with self._lock:
            return self._snapshot

    def _per_feature(self, pick: Callable[[FeatureFigures], float | None]
                     ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            out = []
            for f in self.snapshot.features:
                value = pick(f)
                if value is not None:
                    out.append(Observation(float(value), {
                        "model": f.model, "model_version": f.version, "feature": f.feature,
                        "test": f.test}))
            return out
        return callback

    def _windows(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"model": m, "model_version": v, "feature": f})
                for (m, v, f), n in self.snapshot.window_samples.items()]

    def _reference(self, pick: Callable[[int, int], float]
                   ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(float(pick(n, need)), {"model": m, "model_version": v,
                                                        "feature": f})
                    for (m, v, f), (n, need) in self.snapshot.references.items()]
        return callback

    def _evaluated(self, options: CallbackOptions) -> Iterable[Observation]:
        at = self.snapshot.evaluated_at
        return [] if at is None else [Observation(at)]

    def _figures(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(f.value, {"model": m, "model_version": v, "figure": f.name,
                                      "point": f.point, "scenario": f.scenario})
                for (m, v, *_), f in self.snapshot.baseline_figures.items()]

    def _loads(self, options: CallbackOptions) -> Iterable[Observation]:
        # one series per (point, scenario): its figures share the scenario's rate
        loads: dict[tuple[str, str, str, str], float] = {}
        for (m, v, *_), f in self.snapshot.baseline_figures.items():
            if f.rate_qps is not None:
                loads.setdefault((m, v, f.point, f.scenario), f.rate_qps)
        return [Observation(rate, {"model": m, "model_version": v, "point": point,
                                   "scenario": scenario})
                for (m, v, point, scenario), rate in loads.items()]

    def _refused(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.snapshot.refused_baselines)]

    def _estimated(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(x, {"model": m, "model_version": v, "method": method})
                for (m, v, method), x in self.snapshot.estimated_accuracy.items()]

    def _realized(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            snap = self.snapshot
            return [Observation(float(pair[index]), {"model": m, "model_version": v})
                    for (m, v), pair in snap.realized_accuracy.items()] + [
                Observation(float(pair[index]), {"model": m, "model_version": v, "slice": s})
                for (m, v, s), pair in snap.realized_slice_accuracy.items()]
        return callback

    def _ingest(self, options: CallbackOptions) -> Iterable[Observation]:
        t = self._totals()
        out = [Observation(t.accepted, {"outcome": "accepted", "reason": ""}),
               Observation(t.duplicates, {"outcome": "duplicate", "reason": ""})]
        out += [Observation(n, {"outcome": "rejected", "reason": r}) for r, n in t.rejected.items()]
        return out

    def _alerts(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"status": s}) for s, n in self._alert_counts().items()]

    def _refused_alerts(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"reason": r}) for r, n in self._alert_refusals().items()]

    def _kafka(self) -> Any:
        try:
            return self._kafka_stats()
        except Exception:  # a scrape must not fail because the consumer is half-built
            return None

    def _kafka_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._kafka()
        lag = None if stats is None else stats.lag
        return [] if lag is None else [Observation(int(lag))]

    def _kafka_gauge(self, figure: Callable[[Any], int | None]
                     ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            stats = self._kafka()
            value = None if stats is None else figure(stats)
            return [] if value is None else [Observation(int(value))]
        return callback

    def _kafka_poison(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._kafka()
        return [] if stats is None else [Observation(int(n), {"reason": str(r)})
                                         for r, n in stats.poison.items()]

    def _kafka_count(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            stats = self._kafka()
            return [] if stats is None else [Observation(int(getattr(stats, name)))]
        return callback

    def close(self) -> None:
        self.endpoint.close()
        self.provider.shutdown()
