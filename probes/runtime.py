"""`configure()` / `shutdown()`: export, GPU sampler and sample queue for one process.

Every argument can also come from a `BENCHWATCH_<NAME>` environment variable (an explicit
argument wins over the environment, the environment over the default), so a deployment can
switch export on without code changes. Bad settings fail here, at start-up, with a message
that says what to change; nothing after start-up raises into the serving path.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import threading
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Metric, MetricReader
from opentelemetry.sdk.resources import Resource

from probes import metric_names as m
from probes.energy import EnergySampler, EnergySource, discover_sources, parse_idle_power
from probes.errors import ConfigError
from probes.exponential import HISTOGRAM_KINDS
from probes.export import (
    CountingExporter,
    ProducingPeriodicReader,
    PrometheusEndpoint,
    otlp_exporter,
)
from probes.metrics import Producer
from probes.samples import Sink
from probes.sampling import SampleQueue
from probes.state import DEFAULT_REGISTRY, Registry

__all__ = ["Runtime", "Settings", "configure", "current", "shutdown"]

log = logging.getLogger("probes")

_UNSET: Any = object()
ENV_PREFIX = "BENCHWATCH_"
GPU_MODES = ("auto", "off", "required")


@dataclass(frozen=True)
class Settings:
    service_name: str = "benchwatch-service"
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464  # 0 = no endpoint
    prometheus_port_span: int = 1  # >1: first free port of [port, port + span) (pre-fork workers)
    otlp_endpoint: str | None = None
    # every histogram pushed over OTLP: "classic" (explicit buckets: 118 series per model, version
    # and outcome for latency) or "exponential" (base-2; one native-histogram series in Prometheus 3).
    # The pull endpoint always serves classic buckets (Prometheus text format).
    histograms: str = "classic"
    # trace exemplars on the latency histogram (the sampled active span of a recent call; reading
    # it costs about as much as the rest of the probe, so off by default; OTLP, probes/exemplars.py)
    exemplars: bool = False
    export_interval_s: float = 10.0
    sink: str | None = None  # URL form (a Sink object is passed beside the settings)
    sample_rate: float = 0.0
    queue_size: int = 10_000
    gpu: str = "auto"
    worker_id: str | None = None
    energy_interval_s: float = 0.25
    # idle power in watts (all devices, or {hw_id or hw_type: W}; env "gpu0=60,cpu=12"):
    # None = learned from intervals with no call in flight (probes/energy.py)
    idle_power_w: float | str | Mapping[str, float] | None = None


_FIELDS = tuple(Settings.__dataclass_fields__)


def _env_value(name: str, raw: str, kind: Any) -> Any:
    if kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a boolean (use 1 or 0)")
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    return raw or None


def resolve_settings(explicit: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Arguments > BENCHWATCH_* environment > defaults, then validated."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name in explicit and explicit[name] is not _UNSET:
            values[name] = explicit[name]
        elif f"{ENV_PREFIX}{name.upper()}" in env:
            default = getattr(defaults, name)
            kind = type(default) if default is not None else str
            values[name] = _env_value(name, env[f"{ENV_PREFIX}{name.upper()}"], kind)
        else:
            values[name] = getattr(defaults, name)
    s = Settings(**values)
    _validate(s)
    return s


def _validate(s: Settings) -> None:
    if not isinstance(s.service_name, str) or not s.service_name.strip():
        raise ConfigError(f"service_name must be a non-empty string, got {s.service_name!r}: "
                          "configure(service_name=\"digits-api\") or BENCHWATCH_SERVICE_NAME")
    if isinstance(s.prometheus_port, bool) or not isinstance(s.prometheus_port, int) \
            or not 0 <= s.prometheus_port <= 65535:
        raise ConfigError(f"prometheus_port must be 0 (no endpoint) or a port 1..65535, got "
                          f"{s.prometheus_port!r} (BENCHWATCH_PROMETHEUS_PORT)")
    if isinstance(s.prometheus_port_span, bool) or not isinstance(s.prometheus_port_span, int) \
            or not 1 <= s.prometheus_port_span <= 1024:
        raise ConfigError(f"prometheus_port_span must be 1..1024, got {s.prometheus_port_span!r} "
                          "(BENCHWATCH_PROMETHEUS_PORT_SPAN)")
    if s.otlp_endpoint is not None:
        u = urllib.parse.urlsplit(str(s.otlp_endpoint))
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ConfigError(f"otlp_endpoint must look like http://127.0.0.1:4318, got {s.otlp_endpoint!r}")
    if not isinstance(s.exemplars, bool):
        raise ConfigError(f"exemplars must be True or False, got {s.exemplars!r} (BENCHWATCH_EXEMPLARS=1)")
    if s.histograms not in HISTOGRAM_KINDS:
        raise ConfigError(f"histograms must be one of {HISTOGRAM_KINDS}, got {s.histograms!r} "
                          "(BENCHWATCH_HISTOGRAMS)")
    if s.histograms == "exponential" and s.otlp_endpoint is None:
        raise ConfigError("histograms=\"exponential\" applies to OTLP push, and no otlp_endpoint is set: "
                          "configure(otlp_endpoint=\"http://127.0.0.1:4318\", histograms=\"exponential\") "
                          "(or BENCHWATCH_OTLP_ENDPOINT); the Prometheus pull endpoint serves classic buckets")
    if not isinstance(s.export_interval_s, int | float) or not math.isfinite(s.export_interval_s) \
            or s.export_interval_s <= 0:
        raise ConfigError(f"export_interval_s must be > 0 seconds, got {s.export_interval_s!r}")
    if not isinstance(s.sample_rate, int | float) or not 0.0 <= s.sample_rate <= 1.0:
        raise ConfigError(f"sample_rate must be between 0 and 1, got {s.sample_rate!r} (BENCHWATCH_SAMPLE_RATE)")
    if isinstance(s.queue_size, bool) or not isinstance(s.queue_size, int) or s.queue_size < 1:
        raise ConfigError(f"queue_size must be a positive integer, got {s.queue_size!r}")
    if s.gpu not in GPU_MODES:
        raise ConfigError(f"gpu must be one of {GPU_MODES} (or energy source objects), got {s.gpu!r}")
    if s.worker_id is not None and (not isinstance(s.worker_id, str) or not s.worker_id or len(s.worker_id) > 64
                                    or s.worker_id != s.worker_id.strip()):
        raise ConfigError(f"worker_id must be a short non-empty string, got {s.worker_id!r}")
    if not s.energy_interval_s > 0:
        raise ConfigError(f"energy_interval_s must be > 0, got {s.energy_interval_s!r}")
    parse_idle_power(s.idle_power_w)  # raises ConfigError saying what to write


class Runtime:
    """What `configure()` started; `shutdown()` stops it. `collect()` returns the metrics an
    export would carry (tests, debugging)."""

    def __init__(self, settings: Settings, registry: Registry, sink: Sink | None,
                 energy_sources: Sequence[EnergySource] | None) -> None:
        self.settings = settings
        self.registry = registry
        self.endpoint: PrometheusEndpoint | None = None
        self.queue: SampleQueue | None = None
        self.energy: EnergySampler | None = None
        self.meter_provider: MeterProvider | None = None
        if settings.worker_id == "auto":  # one identity per worker process
            settings = dataclasses.replace(settings, worker_id=f"pid{os.getpid()}")
            self.settings = settings
        instance = settings.worker_id or uuid.uuid4().hex[:12]
        attrs: dict[str, str] = {"service.name": settings.service_name, "service.instance.id": instance}
        if settings.worker_id:
            attrs["benchwatch.worker_id"] = settings.worker_id
        self.resource = Resource.create(attrs)
        try:
            if sink is not None:
                self.queue = SampleQueue(sink, registry.faults, maxsize=settings.queue_size)
            sources = list(energy_sources) if energy_sources is not None else discover_sources(settings.gpu)
            if sources:
                self.energy = EnergySampler(registry, sources, settings.energy_interval_s,
                                            idle_power_w=parse_idle_power(settings.idle_power_w))
            self.producer = Producer(registry, settings.worker_id, self.energy, self.queue)
            readers: list[MetricReader] = []
            if settings.prometheus_port:
                self.endpoint = PrometheusEndpoint(settings.prometheus_host, settings.prometheus_port,
                                                   producer=self.producer, resource=self.resource,
                                                   port_span=settings.prometheus_port_span)
                readers.append(self.endpoint.reader)
            if settings.otlp_endpoint:
                exporter = CountingExporter(
                    otlp_exporter(settings.otlp_endpoint),
                    on_failure=lambda: registry.faults.record("export", None, "OTLP export failed"))
                pushed = dataclasses.replace(self.producer, exponential=settings.histograms == "exponential")
                readers.append(ProducingPeriodicReader(exporter, pushed, self.resource,
                                                       settings.export_interval_s * 1000))
            self.meter_provider = MeterProvider(metric_readers=readers, resource=self.resource)
            # One SDK instrument so every collection carries data (the SDK skips readers'
            # _receive_metrics, where the producer's metrics are merged, when it has none).
            self.meter_provider.get_meter("benchwatch.probes").create_observable_gauge(
                m.OTEL_PROBE_MODELS, callbacks=[self._observe_models],
                description="(model, version) pairs probed in this process")
            if self.energy is not None:
                self.energy.start()
        except BaseException:
            self.shutdown()
            raise
        registry.sample_queue = self.queue
        registry.sample_rate = float(settings.sample_rate) if self.queue is not None else 0.0
        registry.exemplars = settings.exemplars

    def _observe_models(self, options: CallbackOptions) -> Iterable[Observation]:
        attrs = {"worker_id": self.settings.worker_id} if self.settings.worker_id else {}
        return [Observation(len(self.registry.states()), attrs)]

    @property
    def prometheus_url(self) -> str | None:
        return self.endpoint.url if self.endpoint is not None else None

    def collect(self) -> list[Metric]:
        return self.producer()

    def shutdown(self) -> None:
        self.registry.exemplars = False
        self.registry.sample_rate = 0.0
        self.registry.sample_queue = None
        if self.energy is not None:
            self.energy.close()
        if self.queue is not None:
            self.queue.close()
        if self.meter_provider is not None:
            try:
                self.meter_provider.shutdown()  # final OTLP export
            except Exception as e:
                log.warning("OpenTelemetry shutdown: %s", e)
        if self.endpoint is not None:
            self.endpoint.close()


_lock = threading.Lock()
_current: Runtime | None = None


def configure(
    service_name: str = _UNSET,
    *,
    prometheus_host: str = _UNSET,
    prometheus_port: int = _UNSET,
    prometheus_port_span: int = _UNSET,
    otlp_endpoint: str | None = _UNSET,
    histograms: str = _UNSET,
    exemplars: bool = _UNSET,
    export_interval_s: float = _UNSET,
    sink: Sink | str | None = _UNSET,
    sample_rate: float = _UNSET,
    queue_size: int = _UNSET,
    gpu: str | EnergySource | Sequence[EnergySource] = _UNSET,
    worker_id: str | None = _UNSET,
    energy_interval_s: float = _UNSET,
    idle_power_w: float | Mapping[str, float] | None = _UNSET,
    registry: Registry | None = None,
    **unknown: Any,
) -> Runtime:
    """Set up export for this process (once; `shutdown()` before configuring again).

    Prometheus pull endpoint on 127.0.0.1:9464 by default (`prometheus_port=0`: none), OTLP/HTTP
    push with `otlp_endpoint="http://collector:4318"` (add `histograms="exponential"` for base-2
    histograms: one Prometheus 3 native-histogram series each), sampled output summaries to `sink` (a
    `Sink` or a URL: http(s)://… collector, kafka://host:port/topic) at `sample_rate`.
    Multi-worker servers (gunicorn/uvicorn workers): `worker_id="auto"` and
    `prometheus_port_span=N` let identical workers each bind one port of a range; Prometheus
    scrapes the range and sums in PromQL (see docs/probes.md).
    Energy: only the energy above each device's idle power is attributed to models; the idle
    power is learned from intervals with no call in flight, or fixed with `idle_power_w=60`
    (watts, every device) or `idle_power_w={"gpu0": 60, "cpu": 12}`.
    """
    if unknown:
        name = next(iter(unknown))
        close = difflib.get_close_matches(name, [*_FIELDS, "registry"], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known options: {', '.join(_FIELDS)}"
        raise ConfigError(f"configure() got an unknown option {name!r}{hint}")
    global _current
    explicit = {
        "service_name": service_name, "prometheus_host": prometheus_host, "prometheus_port": prometheus_port,
        "prometheus_port_span": prometheus_port_span,
        "otlp_endpoint": otlp_endpoint, "histograms": histograms, "exemplars": exemplars,
        "export_interval_s": export_interval_s,
        "sample_rate": sample_rate,
        "queue_size": queue_size, "worker_id": worker_id, "energy_interval_s": energy_interval_s,
        "idle_power_w": idle_power_w,
    }
    sources: list[EnergySource] | None = None
    if gpu is not _UNSET and not isinstance(gpu, str):  # injected energy sources (tests, custom meters)
        sources = [gpu] if isinstance(gpu, EnergySource) else list(gpu)
    elif gpu is not _UNSET:
        explicit["gpu"] = gpu
    sink_obj: Sink | None = None
    if sink is not _UNSET and sink is not None and not isinstance(sink, str):
        if not isinstance(sink, Sink):
            raise ConfigError(f"sink must be a URL or an object with send(samples) and close(), got {sink!r}")
        sink_obj = sink
    else:
        explicit["sink"] = sink
    settings = resolve_settings(explicit)
    if sink_obj is None and settings.sink:
        from probes.sinks import from_url

        sink_obj = from_url(settings.sink)
    if settings.sample_rate > 0 and sink_obj is None:
        raise ConfigError(f"sample_rate={settings.sample_rate} needs a sink: configure(sink=\"http://127.0.0.1:9463\") "
                          "or a Sink object (e.g. collector.InProcessSink), or BENCHWATCH_SINK")
    with _lock:
        if _current is not None:
            raise ConfigError("probes are already configured in this process; call probes.shutdown() first")
        _current = Runtime(settings, registry if registry is not None else DEFAULT_REGISTRY, sink_obj, sources)
        log.info("benchwatch probes configured: service=%s prometheus=%s otlp=%s sample_rate=%s",
                 settings.service_name, _current.prometheus_url, settings.otlp_endpoint, settings.sample_rate)
        return _current


def current() -> Runtime | None:
    return _current


def shutdown() -> None:
    """Stop export, flush the sample queue, free the port. Safe to call when not configured."""
    global _current
    with _lock:
        rt, _current = _current, None
    if rt is not None:
        rt.shutdown()
