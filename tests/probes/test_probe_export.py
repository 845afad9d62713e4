"""configure()/shutdown(), the Prometheus endpoint (private registries, promtool), OTLP push
to a real HTTP receiver on loopback, and export faults kept from the caller."""

from __future__ import annotations

import http.server
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider

import probes
from benchwatch import promtext
from benchwatch.services import free_port
from probes import ConfigError, PrometheusEndpoint, configure, probe, shutdown
from probes import metric_names as m
from probes.metrics import METRICS
from probes.runtime import resolve_settings
from probes.state import Registry


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def test_endpoints_have_private_registries_in_one_process() -> None:
    a, b = PrometheusEndpoint("127.0.0.1", 0), PrometheusEndpoint("127.0.0.1", 0)
    mpa, mpb = MeterProvider(metric_readers=[a.reader]), MeterProvider(metric_readers=[b.reader])
    try:
        mpa.get_meter("x").create_counter("only.in.a", description="a").add(1)
        mpb.get_meter("y").create_counter("only.in.b", description="b").add(1)
        ta, tb = promtext.fetch(a.url), promtext.fetch(b.url)
        assert "only_in_a_total" in ta and "only_in_b" not in ta
        assert "only_in_b_total" in tb and "only_in_a" not in tb
    finally:
        mpa.shutdown()
        mpb.shutdown()
        a.close()
        b.close()
    with pytest.raises(OSError):
        promtext.fetch(a.url)  # port freed


def test_port_taken_and_bad_port_fail_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match="BENCHWATCH_PROMETHEUS_PORT"):
            configure("svc", prometheus_port=port, gpu="off")
    with pytest.raises(ConfigError, match="prometheus_port"):
        configure("svc", prometheus_port=70000, gpu="off")
    assert probes.current() is None


def test_configuration_errors_say_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="did you mean 'sample_rate'"):
        configure("svc", sampel_rate=0.1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="needs a sink"):
        configure("svc", sample_rate=0.5, prometheus_port=0, gpu="off")
    with pytest.raises(ConfigError, match="service_name"):
        configure("", prometheus_port=0)
    with pytest.raises(ConfigError, match="gpu must be one of"):
        configure("svc", prometheus_port=0, gpu="maybe")
    with pytest.raises(ConfigError, match="unknown sink URL scheme"):
        configure("svc", prometheus_port=0, gpu="off", sink="ftp://x")
    monkeypatch.setenv("BENCHWATCH_SAMPLE_RATE", "lots")
    with pytest.raises(ConfigError, match="BENCHWATCH_SAMPLE_RATE='lots' is not a number"):
        configure("svc", prometheus_port=0)
    monkeypatch.delenv("BENCHWATCH_SAMPLE_RATE")
    configure("svc", prometheus_port=0, gpu="off", sample_rate=0.0)
    with pytest.raises(ConfigError, match="already configured"):
        configure("svc", prometheus_port=0, gpu="off")


def test_environment_supplies_settings_and_arguments_win() -> None:
    env = {"BENCHWATCH_PROMETHEUS_PORT": "0", "BENCHWATCH_SERVICE_NAME": "from-env",
           "BENCHWATCH_WORKER_ID": "w7", "BENCHWATCH_EXPORT_INTERVAL_S": "2.5"}
    s = resolve_settings({}, env)
    assert (s.prometheus_port, s.service_name, s.worker_id, s.export_interval_s) == (0, "from-env", "w7", 2.5)
    assert resolve_settings({"service_name": "arg"}, env).service_name == "arg"


def test_exposition_passes_promtool_and_has_help_everywhere() -> None:
    reg = Registry()
    rt = configure("svc", prometheus_port=free_port(), gpu="off", worker_id="w1", registry=reg)

    @probe(model="digits", version="v3", registry=reg)
    def predict(x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            raise ValueError("empty")
        return np.random.default_rng(0).normal(size=(x.shape[0], 10))

    @probe(model="reg", version="v1", registry=reg)
    def regress(x: np.ndarray) -> np.ndarray:
        return x[:, 0]

    for n in (1, 4, 32):
        predict(np.zeros((n, 8)))
        regress(np.ones((n, 2)))
    with pytest.raises(ValueError):
        predict(np.zeros((0, 8)))
    assert rt.prometheus_url is not None
    text = promtext.fetch(rt.prometheus_url)
    series = promtext.parse(text).series
    for name in (m.LATENCY_BUCKET, m.ERRORS, m.IN_FLIGHT, m.BATCH_SIZE + "_bucket", m.OUTPUT_CLASS,
                 m.OUTPUT_CONFIDENCE + "_bucket", m.OUTPUT_ENTROPY + "_bucket",
                 m.OUTPUT_VALUE + "_bucket", m.FAULTS, m.PROBE_MODELS):
        assert name in series, name
    assert 'worker_id="w1"' in text and 'error_type="ValueError"' in text
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP")}
    types = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert types <= helps
    for family in helps:
        line = next(x for x in text.splitlines() if x.startswith(f"# HELP {family} "))
        assert len(line.split(maxsplit=3)) == 4, f"{family} has an empty help text"
    assert all(info.description for info in METRICS.values())
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


class _OtlpReceiver(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_otlp_push_to_a_real_http_receiver() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    _OtlpReceiver.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        reg = Registry()
        configure("pushed", prometheus_port=0, gpu="off", registry=reg, worker_id="w2",
                  otlp_endpoint=f"http://127.0.0.1:{server.server_address[1]}", export_interval_s=0.2)

        @probe(model="m", version="v", registry=reg)
        def f() -> int:
            return 1

        for _ in range(7):
            f()
        deadline = time.monotonic() + 10
        while not _OtlpReceiver.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        shutdown()  # final export
    finally:
        server.shutdown()
        server.server_close()
    req = ExportMetricsServiceRequest()
    req.ParseFromString(_OtlpReceiver.bodies[-1])
    metrics = {x.name: x for rm in req.resource_metrics for sm in rm.scope_metrics for x in sm.metrics}
    dur = metrics[m.OTEL_LATENCY]
    assert dur.unit == "s" and dur.description
    [point] = [p for p in dur.histogram.data_points
               if {a.key: a.value.string_value for a in p.attributes}.get("outcome") == "ok"]
    assert point.count == 7 and list(point.explicit_bounds)[0] == pytest.approx(1e-4)
    assert {a.key: a.value.string_value for a in point.attributes}["worker_id"] == "w2"


def test_collector_down_is_counted_never_raised(caplog: Any) -> None:
    reg = Registry()
    dead = free_port()  # nothing listens there
    configure("pushed", prometheus_port=0, gpu="off", registry=reg,
              otlp_endpoint=f"http://127.0.0.1:{dead}", export_interval_s=0.1)

    @probe(model="m", version="v", registry=reg)
    def f() -> str:
        return "ok"

    with caplog.at_level(logging.WARNING):
        deadline = time.monotonic() + 15
        while reg.faults.counts()["export"] == 0 and time.monotonic() < deadline:
            assert f() == "ok"
            time.sleep(0.05)
    assert reg.faults.counts()["export"] >= 1
    assert sum(reg.state("m", "v").snapshot().totals.ok) >= 1
