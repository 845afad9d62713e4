"""Trace exemplars on the latency histogram (`configure(exemplars=True)`): a call inside an active
span leaves its trace and span id on the pushed histogram, and Prometheus 3's exemplar storage
returns them for the native series."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span

import probes
from benchwatch import services
from probes import metric_names as m
from probes import probe
from probes.metrics import Producer
from probes.state import Registry
from tests.support.prometheus3 import otlp_url, start_prometheus3
from tests.support.wait import wait_until


def _exemplars(reg: Registry) -> list[object]:
    [metric] = [x for x in Producer(reg)() if x.name == m.OTEL_LATENCY]
    return [e for p in metric.data.data_points for e in p.exemplars]


def test_only_calls_inside_a_span_and_only_when_asked() -> None:
    reg = Registry()
    tracer = TracerProvider().get_tracer("test")

    @probe(model="ex", version="v1", outputs=None, registry=reg)
    def f() -> int:
        return 1

    with tracer.start_as_current_span("off"):
        f()
    assert _exemplars(reg) == []  # exemplars off (the default)
    reg.exemplars = True
    f()
    assert _exemplars(reg) == []  # no span active
    unsampled = SpanContext(trace_id=7, span_id=9, is_remote=True, trace_flags=TraceFlags(0))
    with use_span(NonRecordingSpan(unsampled)):  # a trace the tracer's sampler dropped
        f()
    assert _exemplars(reg) == []  # it would link to a trace no backend keeps
    with tracer.start_as_current_span("request") as span:
        f()
    [ex] = _exemplars(reg)
    assert ex.trace_id == span.get_span_context().trace_id and ex.value > 0  # type: ignore[attr-defined]


@pytest.fixture
def prom() -> Iterator[services.Prometheus]:
    p = start_prometheus3({})
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.prometheus
def test_prometheus3_stores_the_exemplar_of_the_native_histogram(prom: services.Prometheus) -> None:
    reg = Registry()
    tracer = TracerProvider().get_tracer("test")

    @probe(model="exemplar", version="v1", outputs=None, registry=reg)
    def f() -> None:
        time.sleep(0.001)

    probes.configure("exemplar-test", registry=reg, prometheus_port=0, otlp_endpoint=otlp_url(prom),
                     histograms="exponential", exemplars=True, export_interval_s=1.0, gpu="off")
    try:
        with tracer.start_as_current_span("request") as span:
            f()
        want = f"{span.get_span_context().trace_id:032x}"
        found: list[dict[str, str]] = []

        def stored() -> bool:
            now = time.time()
            q = urllib.parse.urlencode({"query": f'{m.LATENCY}{{model="exemplar"}}',
                                        "start": f"{now - 300:.3f}", "end": f"{now + 60:.3f}"})
            out = services._http_json(f"{prom.url}/api/v1/query_exemplars?{q}")
            found[:] = [e["labels"] for s in out["data"] for e in s["exemplars"]]
            return any(want in e.values() for e in found)

        wait_until(stored, timeout_s=60, what=f"an exemplar with trace id {want}", interval_s=0.5)
    finally:
        probes.shutdown()
