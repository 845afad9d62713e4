"""The pieces `benchwatch demo` starts, each one call, each released by `Parts.close()`.

Every step uses the real part of benchwatch (example model and server, probes, drift service,
bench runner, Prometheus/Alertmanager via `benchwatch.services`, report). A part that cannot
start raises `PartError` saying which and why; the demo decides whether to go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import probes
from benchwatch import rules, services
from benchwatch.bench import backends, runner, suites
from benchwatch.demo.traffic import json_body
from benchwatch.example import model as example
from benchwatch.example import server
from benchwatch.report import dashboards as html_report
from drift.baseline import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes.errors import BenchwatchError
from probes.summarize import summarize_output

log = logging.getLogger(__name__)

DEMO_FOR = "5s"  # the demo shortens the rules' `for:` (production: minutes) to this
DEMO_RANGE = "30s"  # ... and their rate windows (production: 5m)


class PartError(BenchwatchError):
    """A part of the demo could not start or run; the message says which, and why."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    host: str
    port: int
    path: str
    body: Callable[[np.ndarray], bytes]


@dataclass(frozen=True)
class BaselineInfo:
    path: Path
    figures: Mapping[str, float]
    features: tuple[str, ...]


@dataclass(frozen=True)
class AlertSeen:
    name: str
    received_at: float
    summary: str


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Parts:
    def __init__(self, host: str, ports: Mapping[str, int], workdir: Path,
                 say: Callable[[str], None], seed: int = 0) -> None:
        self.host, self.ports, self.workdir, self.say, self.seed = host, ports, workdir, say, seed
        self._closers: list[tuple[str, Callable[[], None]]] = []
        self.probe_metrics_url: str | None = None
        self.drift_metrics_url: str | None = None
        self.gpu = False
        self.service: Any = None
        self.prometheus: services.Prometheus | None = None
        self.alertmanager: services.Alertmanager | None = None
        self.webhook_token = secrets.token_urlsafe(24)
        self.model_files: Any = None
        self.served: ServedModel | None = None

    # -- helpers ---------------------------------------------------------------------------
    def port(self, name: str) -> int:
        """The configured port; 0 = any free one; a taken default falls back to a free one."""
        wanted = int(self.ports.get(name, 0))
        if wanted == 0:
            return services.free_port(self.host)
        if port_free(self.host, wanted):
            return wanted
        got = services.free_port(self.host)
        self.say(f"demo: port {wanted} ({name}) is taken; using {got} instead")
        return got

    def on_close(self, name: str, fn: Callable[[], None]) -> None:
        self._closers.append((name, fn))

    def close(self) -> None:
        """Stop everything in reverse order of start; one failure does not stop the rest."""
        while self._closers:
            name, fn = self._closers.pop()
            try:
                fn()
            except Exception:  # keep releasing the others
                log.exception("demo: stopping %s failed", name)

    # -- steps -----------------------------------------------------------------------------
    def model(self) -> Any:
        files = example.shipped_model()
        self.say(f"demo: model {files.name} {files.version}, shipped with benchwatch "
                 f"({files.onnx_path}, held-out accuracy {files.meta['test_accuracy']:.3f})")
        self.model_files = files
        return files

    def baseline(self, files: Any, served: ServedModel) -> BaselineInfo:
        """Benchmark the served model on the digits suite and save the run as its baseline.

        The bench goes through the served endpoint (`benchwatch bench --backend http`), so the
        baseline's latency is what the release measured on its serving stack. The probe then
        measures only the model call inside the server, so its live p99 stays under the
        baseline's unless the model slows down or the process is starved; an in-process ORT
        bench (a few µs a call) would make every live request look like a regression.
        """
        backend = backends.HttpBackend(f"http://{served.host}:{served.port}")
        settings = runner.RunSettings(seed=self.seed, warmup_queries=100,
                                      single_stream_queries=1000, offline_samples=3000,
                                      server=False)
        suite = suites.load_suite("digits")
        t0 = time.monotonic()
        result = runner.run_benchmark(backend, suite, settings)
        backend.close()
        if result.error or result.accuracy is None:
            raise PartError(f"the benchmark of the example model failed: {result.error}")
        rows = summarize_output(result.accuracy.outputs, "classifier")
        features: dict[str, list[Any]] = {}
        for row in rows:
            for k, v in row.items():
                features.setdefault(k, []).append(v)
        figures = result.figures()
        b = Baseline.build(
            files.name, files.version, features, figures,
            source=f"benchwatch demo: bench {suite.name} suite ({suite.content_hash[:12]}) "
                   f"over HTTP at {backend.url}", seed=self.seed)
        out_dir = self.workdir / "baselines"
        out_dir.mkdir(exist_ok=True)
        path = b.save(out_dir / f"{files.name}-{files.version}.json")
        fig = ", ".join(f"{k}={v:.4g}" for k, v in sorted(figures.items()))
        self.say(f"demo: baseline recorded in {time.monotonic() - t0:.1f} s → {path} ({fig})")
        return BaselineInfo(path, dict(figures), tuple(sorted(features)))

    def drift_service(self, interval_s: float, window: int) -> DriftService:
        cfg = ServiceConfig(
            baselines_dir=self.workdir / "baselines",
            state_path=self.workdir / "spool.sqlite",  # the durable spool (SQLite WAL)
            host=self.host, metrics_port=self.port("drift"), ingest_port=0,
            interval_s=interval_s, webhook_token=self.webhook_token,
            min_samples=100, max_per_feature=window)
        svc = DriftService(cfg)
        svc.store.reset()  # a demo run starts from empty windows
        svc.start()
        self.on_close("drift service", svc.stop)
        self.service = svc
        url = svc.metrics_url
        if url is None:
            raise PartError("the drift service started without its metrics endpoint")
        self.drift_metrics_url = url if url.endswith("/metrics") else url + "/metrics"
        self.say(f"demo: drift service every {interval_s:g} s on the embedded transport "
                 f"(spool {cfg.state_path}); metrics {self.drift_metrics_url}")
        return svc

    def probes(self) -> None:
        port = self.port("metrics")
        handle = probes.configure("benchwatch-demo", prometheus_host=self.host,
                                  prometheus_port=port, export_interval_s=1.0,
                                  sink=self.service.sink(), sample_rate=1.0)
        self.on_close("probes", probes.shutdown)
        self.probe_metrics_url = f"http://{self.host}:{port}/metrics"
        self.gpu = getattr(handle, "energy", None) is not None
        self.say(f"demo: probes export on {self.probe_metrics_url}; every request is sampled "
                 "into the drift service in-process")

    def model_server(self, files: Any) -> ServedModel:
        port = self.port("model")
        ready = threading.Event()
        state: dict[str, Any] = {}

        def run() -> None:
            async def main() -> None:
                state["loop"] = asyncio.get_running_loop()
                state["stop"] = stop = asyncio.Event()
                cfg = server.ServerConfig(host=self.host, port=port, version=files.version,
                                          seed=self.seed, metrics_port=0)
                def on_ready(p: int) -> None:
                    state["port"] = p
                    ready.set()

                await server.serve(cfg, ready=on_ready, stop=stop)

            try:
                asyncio.run(main())
            except Exception as exc:
                state["error"] = exc
                log.exception("demo: model server failed")
            finally:
                ready.set()

        thread = threading.Thread(target=run, name="demo-model-server", daemon=True)
        thread.start()
        ready.wait(60)
        if "port" not in state:
            raise PartError(f"the example model server did not start: {state.get('error')}")

        def stop() -> None:
            loop, ev = state.get("loop"), state.get("stop")
            if loop is not None and ev is not None and not loop.is_closed():
                loop.call_soon_threadsafe(ev.set)
            thread.join(10)

        self.on_close("model server", stop)
        served = ServedModel(files.name, files.version, self.host, int(state["port"]), "/predict",
                             json_body)
        self.served = served
        self.say(f"demo: serving {files.name} {files.version} on "
                 f"http://{self.host}:{served.port}/predict (ONNX Runtime, probed)")
        return served

    def monitoring(self) -> None:
        """Alertmanager (webhook → drift service) then Prometheus with the deploy rules."""
        if services.find_binary(services.PROMETHEUS_BIN) is None or \
                services.find_binary(*services.ALERTMANAGER_BINS) is None:
            raise PartError("Prometheus/Alertmanager are not installed, so no alert will be "
                              f"sent (drift is still shown): {services.INSTALL_HINT}")
        if self.service is None or self.service.url is None:
            raise PartError("the drift service has no HTTP endpoint for Alertmanager's webhook")
        rules = self.demo_rules()
        try:
            am = services.start_alertmanager(self.alertmanager_config(), host=self.host,
                                             port=self.port("alertmanager"))
        except services.ServiceError as exc:
            raise PartError(f"Alertmanager did not start: {exc}") from exc
        self.on_close("alertmanager", am.stop)
        self.alertmanager = am
        targets = {"benchwatch-probes": [self._hostport(self.probe_metrics_url)],
                   "benchwatch-drift": [self._hostport(self.drift_metrics_url)]}
        try:
            prom = services.start_prometheus(targets, rule_files=rules, alertmanager=am.url,
                                             host=self.host, port=self.port("prometheus"))
        except services.ServiceError as exc:
            raise PartError(f"Prometheus did not start: {exc}") from exc
        self.on_close("prometheus", prom.stop)
        self.prometheus = prom
        self.say(f"demo: Prometheus {prom.url} (rules: {', '.join(p.name for p in rules)}), "
                 f"Alertmanager {am.url} → webhook {self.service.url}/v1/alerts")

    @staticmethod
    def _hostport(url: str | None) -> str:
        if not url:
            raise PartError("a metrics endpoint is missing")
        return url.split("://", 1)[1].split("/", 1)[0]

    def alertmanager_config(self) -> dict[str, Any]:
        return {
            "route": {"receiver": "benchwatch-demo", "group_by": ["alertname", "model", "feature"],
                      "group_wait": "1s", "group_interval": "5s", "repeat_interval": "1h"},
            "receivers": [{"name": "benchwatch-demo", "webhook_configs": [{
                "url": f"{self.service.url}/v1/alerts", "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer",
                                                  "credentials": self.webhook_token}}}]}],
        }

    def demo_rules(self) -> list[Path]:
        """The packaged rule files with `for:` and rate windows shortened for a demo."""
        return list(rules.shorten_for(rules.rule_files(), self.workdir / "rules", DEMO_FOR,
                                      range_window=DEMO_RANGE))

    def alerts_firing(self) -> list[AlertSeen]:
        """Alerts Alertmanager delivered to the drift service's webhook, first per name."""
        if self.service is None:
            return []
        first: dict[str, AlertSeen] = {}
        for a in self.service.alerts.alerts():
            if a.status == "firing" and a.name not in first:
                first[a.name] = AlertSeen(a.name, a.received_at, a.summary)
        return sorted(first.values(), key=lambda x: x.received_at)

    def report(self, duration_s: float) -> str | None:
        if self.prometheus is None:
            return self.plain_report()
        time.sleep(2.5)  # let Prometheus scrape the final state
        minutes = max(2.0, duration_s / 60 + 1.5)
        summary = html_report.write_report(self.prometheus.url, self.workdir / "report.html",
                                      minutes=minutes, step_s=2.0, rate_interval="30s")
        self.say(f"demo: report has {summary.with_data} of {summary.panels} panels with data")
        return str(summary.path)

    def plain_report(self) -> str | None:
        """Without Prometheus there is nothing to render panels from: write the drift service's
        last evaluation as a small HTML page instead (and say so on it)."""
        if self.service is None:
            return None
        status = self.service.status()
        rows = "".join(
            f"<tr><td>{f['feature']}</td><td>{f['test']}</td><td>{f['score']:.4f}</td>"
            f"<td>{f['threshold']:.4f}</td><td>{'YES' if f['detected'] else 'no'}</td></tr>"
            for f in status["features"])
        html = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>benchwatch demo</title>"
                "</head><body><h1>benchwatch demo (without Prometheus)</h1><p>Run with "
                "Prometheus installed for the full report with latency, throughput and drift "
                "panels. This page is the drift service's last evaluation.</p><table border=1>"
                "<tr><th>feature</th><th>test</th><th>score</th><th>threshold</th>"
                f"<th>drift</th></tr>{rows}</table><pre>{json.dumps(status['ingest'])}</pre>"
                "</body></html>\n")
        path = self.workdir / "report.html"
        path.write_text(html)
        return str(path)

