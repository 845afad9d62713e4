"""OpenTelemetry export: a Prometheus pull endpoint with a private registry, and OTLP/HTTP push.

The probe keeps its own pre-aggregated state (see `probes.state`) and turns it into OTel
`Metric`s only when a reader collects: a *producer* (a callable returning metrics) is merged
into whatever the SDK's own instruments collected. The OpenTelemetry Python SDK (1.45) has no
`MetricProducer` hook on readers and `MetricReader.collect` is final, so the merge happens in
the readers' `_receive_metrics`. The SDK skips `_receive_metrics` when it collected nothing,
so a provider that carries a producer needs at least one SDK instrument with a value (the
probe runtime registers the observable gauge `benchwatch.probe.models`).

`PrometheusEndpoint` is also what the drift service uses for its own metrics: each endpoint owns
a private `CollectorRegistry`, so two endpoints in one process never mix their series.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import start_http_server

from probes._version import __version__
from probes.errors import ConfigError, MissingExtraError

__all__ = [
    "CountingExporter",
    "ProducingPeriodicReader",
    "PrometheusEndpoint",
    "Producer",
    "merge_metrics",
    "otlp_exporter",
]

log = logging.getLogger(__name__)

# A producer returns the metrics to add to each collection (called on the exporting thread).
Producer = Callable[[], Sequence[Metric]]

SCOPE = InstrumentationScope("benchwatch.probes", __version__)


def merge_metrics(
    data: MetricsData | None, extra: Sequence[Metric], resource: Resource | None = None,
    scope: InstrumentationScope = SCOPE,
) -> MetricsData | None:
    """`data` plus one more scope holding `extra` (added to the first resource, or a new one)."""
    if not extra:
        return data
    sm = ScopeMetrics(scope=scope, metrics=list(extra), schema_url="")
    if data is None or not data.resource_metrics:
        rm = ResourceMetrics(resource=resource or Resource.get_empty(), scope_metrics=[sm], schema_url="")
        return MetricsData(resource_metrics=[rm])
    first, *rest = data.resource_metrics
    merged = ResourceMetrics(
        resource=first.resource, scope_metrics=[*first.scope_metrics, sm], schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=[merged, *rest])


def _produce(producer: Producer | None) -> Sequence[Metric]:
    if producer is None:
        return ()
    try:
        return producer()
    except Exception:  # an export must still carry the SDK's own metrics
        log.exception("benchwatch metric producer failed; exporting without its metrics")
        return ()


class _ProducingPrometheusReader(PrometheusMetricReader):
    """A Prometheus reader that adds a producer's metrics at each scrape."""

    def __init__(self, registry: CollectorRegistry, producer: Producer | None,
                 resource: Resource | None) -> None:
        super().__init__(registry=registry)
        self._producer = producer
        self._resource = resource

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        merged = merge_metrics(metrics_data, _produce(self._producer), self._resource)
        if merged is not None:
            super()._receive_metrics(merged, timeout_millis=timeout_millis, **kwargs)


class ProducingPeriodicReader(PeriodicExportingMetricReader):
    """Periodic push (OTLP) that adds a producer's metrics to each export."""

    def __init__(self, exporter: MetricExporter, producer: Producer | None, resource: Resource | None,
                 export_interval_millis: float) -> None:
        self._producer = producer
        self._resource = resource
        super().__init__(exporter, export_interval_millis=export_interval_millis)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        merged = merge_metrics(metrics_data, _produce(self._producer), self._resource)
        if merged is not None:
            super()._receive_metrics(merged, timeout_millis=timeout_millis, **kwargs)


def _check_port(port: object, what: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"{what} must be an integer port 0..65535, got {port!r}")
    return port


class PrometheusEndpoint:
    """A `/metrics` HTTP endpoint for an OTel `MeterProvider`, on its own registry.

    Use: `ep = PrometheusEndpoint("127.0.0.1", 9462)`, then
    `MeterProvider(metric_readers=[ep.reader], resource=...)`; `ep.close()` frees the port.
    `port=0` lets the OS pick one (read it back from `.port`). `producer` adds metrics that are
    not SDK instruments (the probe's pre-aggregated state) to every scrape.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9464, *,
                 producer: Producer | None = None, resource: Resource | None = None,
                 port_span: int = 1, port_option: str | None = None) -> None:
        """`port_option`: what the error for a taken port tells the user to change (the option
        their program actually reads); default: the probe's `configure` settings."""
        _check_port(port, "prometheus port")
        if isinstance(port_span, bool) or not isinstance(port_span, int) or port_span < 1 \
                or port + port_span - 1 > 65535:
            raise ConfigError(f"prometheus port span must be an integer >= 1 that stays below 65536, "
                                    f"got {port_span!r}")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"prometheus host must be a non-empty string, got {host!r}")
        self.host = host
        self.registry = CollectorRegistry(auto_describe=False)
        self.reader: PrometheusMetricReader = _ProducingPrometheusReader(self.registry, producer, resource)
        last: OSError | None = None
        # port_span > 1: the first free port of [port, port + span) — for pre-fork servers whose
        # workers all run the same configure() (Prometheus scrapes the whole range)
        candidates = [0] if port == 0 else range(port, port + port_span)
        for candidate in candidates:
            try:
                self._server, self._thread = start_http_server(candidate, addr=host, registry=self.registry)
                break
            except OSError as e:
                last = e
        else:
            self.reader.shutdown()
            where = f"{host}:{port}" if port_span == 1 else f"{host}:{port}-{port + port_span - 1}"
            fix = port_option or (
                "prometheus_port=... (or BENCHWATCH_PROMETHEUS_PORT), a range for several workers with "
                "prometheus_port_span=N (or BENCHWATCH_PROMETHEUS_PORT_SPAN), or 0 to disable the endpoint")
            raise ConfigError(
                f"cannot serve Prometheus metrics on {where} ({getattr(last, 'strerror', None) or last}): "
                f"the port is taken or the address is not local; choose another with {fix}"
            ) from last
        self.port = int(self._server.server_address[1])
        self._closed = False
        self._lock = threading.Lock()
        log.info("Prometheus metrics on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port (idempotent). The reader stays registered with its
        MeterProvider until that provider shuts down."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PrometheusEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingExporter(MetricExporter):
    """Wraps a push exporter (OTLP) so export failures are counted and logged instead of
    raised (the collector being down must never surface anywhere else)."""

    def __init__(self, inner: MetricExporter, on_failure: Callable[[], None] | None = None) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self._inner = inner
        self._on_failure = on_failure

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as e:
            log.warning("OTLP export failed: %s", e)
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS and self._on_failure is not None:
            self._on_failure()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def otlp_exporter(endpoint: str, timeout_s: float = 5.0) -> MetricExporter:
    """An OTLP/HTTP (protobuf) metric exporter with cumulative temporality (what Prometheus
    and most backends expect). `endpoint` is the collector base URL or the full
    `/v1/metrics` URL."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    except ImportError as e:
        raise MissingExtraError("OTLP push", "otlp", "opentelemetry-exporter-otlp-proto-http") from e
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"otlp_endpoint must be an http(s):// URL, got {endpoint!r}")
    url = endpoint if endpoint.rstrip("/").endswith("/v1/metrics") else endpoint.rstrip("/") + "/v1/metrics"
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )

    cumulative: dict[type, AggregationTemporality] = {
        k: AggregationTemporality.CUMULATIVE
        for k in (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter,
                  ObservableGauge)
    }
    return OTLPMetricExporter(endpoint=url, timeout=timeout_s, preferred_temporality=cumulative)
