"""The packaged OpenTelemetry Collector config with a real otelcol (scripts/build_otelcol.sh).

Probes push OTLP (exponential latency histograms) to the Collector running
benchwatch/assets/deploy/otel-collector.yaml; it remote-writes to one Prometheus 3 (with the
packaged rules) and serves its scrape endpoint, which a second Prometheus 3 scrapes (native
histograms on). Every dashboard panel and rule fed by the probe returns data through each way
out. Only the listen addresses differ from the shipped file (otelcol `--set`): it binds 0.0.0.0
for containers, the test binds loopback ports.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import probes
from benchwatch import assets, services
from benchwatch.grafana import boards as dashboards
from benchwatch.rules import rule_files
from probes import metric_names as m
from probes import probe
from probes.state import Registry
from tests.support.grafana_stack import shortened_rules
from tests.support.prometheus3 import otelcol, start_prometheus3

pytestmark = pytest.mark.prometheus

# panels and rules on the probe's own inference and output series (no drift service, canary,
# baseline, GPU, accuracy labels or fairness slices in this test)
NOT_HERE = re.compile(r"baseline|drift|energy|canary|ALERTS|hw_|dropped|faults|ingest|gen_ai|genai"
                      r"|scorecard|flip|corruption|cost|accuracy|slice")


@dataclass
class Chain:
    remote_written: services.Prometheus
    scraped: services.Prometheus


def _start_collector(otlp_port: int, scrape_port: int, remote_write: str) -> services.ManagedProcess:
    health = services.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="benchwatch-otelcol-"))
    config = workdir / "otel-collector.yaml"
    config.write_text(assets.read_text("deploy/otel-collector.yaml"))
    overrides = {
        "receivers::otlp::protocols::http::endpoint": f"127.0.0.1:{otlp_port}",
        "receivers::otlp::protocols::grpc::endpoint": f"127.0.0.1:{services.free_port()}",
        "exporters::prometheus::endpoint": f"127.0.0.1:{scrape_port}",
        "extensions::health_check::endpoint": f"127.0.0.1:{health}",
        "service::telemetry::metrics::level": "none",  # no internal metrics port
        "processors::batch::timeout": "200ms",
        # the documented switch that turns remote write on next to the scrape endpoint
        "service::pipelines::metrics::exporters": "[prometheus,prometheusremotewrite]",
    }
    cmd = [otelcol(), f"--config={config}", *(f"--set={k}={v}" for k, v in overrides.items())]
    env_cmd = ["env", f"PROMETHEUS_REMOTE_WRITE_URL={remote_write}", *cmd]
    return services._start("otelcol", env_cmd, f"http://127.0.0.1:{health}", "/", workdir, timeout_s=60)


def _drive(stop: threading.Event, reg: Registry) -> None:
    rng = np.random.default_rng(5)

    @probe(model="chain", version="v1", registry=reg)
    def predict(x: np.ndarray) -> np.ndarray:
        time.sleep(0.001)
        if x[0, 0] > 1.5:
            raise ValueError("out of range")
        e = np.exp(rng.normal(0, 1.0, size=(x.shape[0], 5)))
        return e / e.sum(axis=1, keepdims=True)

    while not stop.wait(0.003):
        try:
            predict(rng.normal(size=(2, 4)))
        except ValueError:
            pass


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    tmp = tmp_path_factory.mktemp("chain")
    stop = threading.Event()
    started: list[services.ManagedProcess] = []
    driver = None
    try:
        rules = shortened_rules(tmp)
        written = start_prometheus3({}, rule_files=rules)
        started.append(written)
        otlp_port, scrape_port = services.free_port(), services.free_port()
        scraped = start_prometheus3(
            {"otel-collector": [f"127.0.0.1:{scrape_port}"]},
            config={"global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                               "scrape_native_histograms": True}},
            rule_files=rules)
        started.append(scraped)
        started.append(_start_collector(otlp_port, scrape_port, f"{written.url}/api/v1/write"))
        reg = Registry()
        probes.configure("collector-test", registry=reg, prometheus_port=0,
                         otlp_endpoint=f"http://127.0.0.1:{otlp_port}", histograms="exponential",
                         export_interval_s=1.0, gpu="off")
        driver = threading.Thread(target=_drive, args=(stop, reg), daemon=True)
        driver.start()
        yield Chain(written, scraped)
    finally:
        stop.set()
        if driver is not None:
            driver.join(timeout=30)
        probes.shutdown()
        for p in reversed(started):
            p.stop()


def _checks() -> dict[str, str]:
    import yaml

    out = {}
    for e in dashboards.expressions():
        if not NOT_HERE.search(e.expr):
            out[f"panel {e.where}"] = dashboards.substitute(e.expr, rate_interval="15s")
    for f in rule_files():
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule and not NOT_HERE.search(rule["expr"]):
                    out[f"rule {rule['record']}"] = rule["expr"]
    return out


def _missing(prom: services.Prometheus, checks: dict[str, str], timeout_s: float) -> list[str]:
    pending = dict(checks)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for label, expr in list(pending.items()):
            if prom.query(expr):
                del pending[label]
        if pending:
            time.sleep(1)
    return [f"{label}: {expr}" for label, expr in sorted(pending.items())]


@pytest.mark.parametrize("way", ["remote_written", "scraped"])
def test_dashboards_and_rules_read_data_through_the_collector(chain: Chain, way: str) -> None:
    prom: services.Prometheus = getattr(chain, way)
    checks = _checks()
    assert any("histogram_quantile" in e for e in checks.values()) and len(checks) >= 10, checks
    missing = _missing(prom, checks, timeout_s=90)
    assert not missing, "\n".join(missing)
    # the latency arrived as one native histogram per outcome, not as buckets
    series = prom.query(f'count by (outcome) ({{__name__=~"{m.LATENCY}.*", model="chain"}})')
    assert {r["metric"]["outcome"]: r["value"][1] for r in series} == {"ok": "1", "error": "1"}, series
    [p50] = prom.query(f'histogram_quantile(0.5, sum({m.LATENCY}{{model="chain", outcome="ok"}}))')
    assert 0.001 <= float(p50["value"][1]) < 0.05, p50
