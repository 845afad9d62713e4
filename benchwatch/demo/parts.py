"""The pieces `benchwatch demo` starts, each one call, each released by `Parts.close()`.

Every part is the real one, run as it is deployed: the example model server (`python -m
benchwatch.example.server`, probes on), the drift service (`benchwatch drift serve`, samples over
HTTP) and the traffic generator (`python -m benchwatch.demo.traffic`) are separate processes, so
the observability side (sampling, evaluation, scraping, the demo's own view) never shares a
process, a GIL or an event loop with the model it measures. Prometheus/Alertmanager come from
`benchwatch.services`. The demo waits on each one's readiness (its HTTP endpoint answers, the
traffic's status file appears) before starting the next. A part that cannot start raises
`PartError` saying which and why, with the tail of its log; the demo decides whether to go on.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchwatch import assets, rules, services
from benchwatch.bench import backends, runner, suites
from benchwatch.bench.model_call import ScrapedProbe, read_every
from benchwatch.demo import tail
from benchwatch.demo import traffic as demo_traffic
from benchwatch.example import model as example
from benchwatch.report import dashboards as html_report
from drift.baseline import Baseline
from probes.errors import BenchwatchError
from probes.summarize import summarize_output

log = logging.getLogger(__name__)

# The demo shortens the rules' `for:` (production: minutes) by DEMO_FOR_SCALE, to at least
# DEMO_FOR, so each rule keeps its relative patience: the drift alert's 2m becomes 6 s, a
# latency regression's 10m 30 s (a tail must stay over its bound for 30 s, not one noisy
# evaluation); and their rate windows (production: 5m) to DEMO_RANGE.
DEMO_FOR = "5s"
DEMO_FOR_SCALE = 1 / 20
DEMO_RANGE = "30s"
AM_CONFIG = "deploy/alertmanager/alertmanager.yml"
# Prometheus' scrape and rule interval in the demo (production: 15-60 s). Each read of a model
# server's probe endpoint costs it ~10-20 ms of Python holding the GIL, and a model call that
# ends meanwhile waits: read every second, that would be 1-2% of its calls, the whole p99.
# Both servers are read once per interval: the benchmarked one while it is benchmarked
# (`read_every`), the live one by Prometheus only (the demo's view reads what Prometheus
# scraped, `Parts.probe_view`), so the exposition's share of the tail is in both figures.
SCRAPE_INTERVAL_S = 5.0
SCRAPE_INTERVAL = f"{SCRAPE_INTERVAL_S:g}s"
PROBE_JOB = "benchwatch-probes"  # Prometheus' job for the live server's probe endpoint
START_TIMEOUT_S = 90.0  # a child's imports (ONNX Runtime, SciPy) on a busy 2-core machine


class PartError(BenchwatchError):
    """A part of the demo could not start or run; the message says which, and why."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    host: str
    port: int
    path: str
    metrics_url: str  # the server's probe endpoint (Prometheus text)
    pid: int


@dataclass(frozen=True)
class BaselineInfo:
    path: Path
    baseline: Baseline
    features: tuple[str, ...]
    # (point, scenario) -> the 95% interval of the bench's p99 there (`demo.tail`), from the
    # calls it measured, for the fixed-rate run the demo's live window is compared with
    p99_intervals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


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
    DRIFT = "lower contrast and sensor noise on every request"  # what the traffic's drift is
    TRAFFIC_MODULE = "benchwatch.demo.traffic"
    SERVER_MODULE = "benchwatch.example.server"  # the model server, its endpoint and
    SERVED_PATH = "/predict"                      # how the demo's lines describe it
    SERVED_HOW = "probed"
    SAMPLED_EACH = "request"
    # the traffic's client threads: the bench's fixed-rate scenario's, so the live load has
    # the shape its baseline figure was measured under
    TRAFFIC_WORKERS = runner.RunSettings.server_workers

    def __init__(self, host: str, ports: Mapping[str, int], workdir: Path,
                 say: Callable[[str], None], seed: int = 0) -> None:
        self.host, self.ports, self.workdir, self.say, self.seed = host, ports, workdir, say, seed
        self._closers: list[tuple[str, Callable[[], None]]] = []
        self.probe_metrics_url: str | None = None
        self.drift_metrics_url: str | None = None
        self.drift_url: str | None = None  # the drift service's HTTP: samples, alerts, status
        self.prometheus: services.Prometheus | None = None
        self.alertmanager: services.Alertmanager | None = None
        # one token for the drift service's HTTP: the server's sample sink, Alertmanager's
        # webhook and the demo's reads; handed to the children in their environment, not argv
        self.token = secrets.token_urlsafe(24)
        self.pids: dict[str, int] = {"demo": os.getpid()}
        self.served: ServedModel | None = None  # the live model server
        self._traffic: services.ManagedProcess | None = None
        self.traffic_status_path = workdir / "traffic.json"
        self.logs = workdir / "logs"
        self.logs.mkdir(exist_ok=True)

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

    def _spawn(self, name: str, args: Sequence[str], ready_urls: Sequence[str] = ()
               ) -> services.ManagedProcess:
        """Start `python ARGS` as its own process (own session: the terminal's Ctrl-C reaches
        the demo, which stops the children in order), log to logs/NAME.log, and wait until
        each of `ready_urls` answers 200."""
        log_path = self.logs / f"{name.replace(' ', '-')}.log"
        env = {**os.environ, "BENCHWATCH_TOKEN": self.token, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as logf:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, *args], stdout=logf,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=self.workdir, start_new_session=True)
        child = services.ManagedProcess(name, ready_urls[0] if ready_urls else "", proc,
                                        self.workdir, log_path, _owns_workdir=False)
        self.on_close(name, child.stop)
        self.pids[name] = proc.pid
        try:
            for url in ready_urls:
                services.wait_http(url, START_TIMEOUT_S, proc)
        except services.ServiceError as exc:
            tail = child.log_tail(15)
            child.stop()
            raise PartError(f"the {name} did not start: {exc}\n{tail}") from None
        return child

    def _get_json(self, url: str) -> Any:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback URL we built)
            return json.loads(resp.read())

    # -- steps -----------------------------------------------------------------------------
    def model(self) -> Any:
        files = example.shipped_model()
        self.say(f"demo: model {files.name} {files.version}, shipped with benchwatch "
                 f"({files.onnx_path}, held-out accuracy {files.meta['test_accuracy']:.3f})")
        return files

    def model_server(self, files: Any, name: str, port: int, metrics_port: int
                     ) -> tuple[ServedModel, services.ManagedProcess]:
        """`python -m SERVER_MODULE` with probes on, every request sampled to the
        drift service: the release benchmark's instance runs exactly as the live one does, so
        the sampling thread's share of the cores is in both figures."""
        sink = self.samples_url()
        args = ["-m", self.SERVER_MODULE, "--host", self.host, "--port", str(port),
                "--version", files.version, "--seed", str(self.seed),
                "--metrics-port", str(metrics_port), "--log-level", "WARNING"]
        args += ["--sink", sink, "--sample-rate", "1.0"]
        base = f"http://{self.host}:{port}"
        metrics_url = f"http://{self.host}:{metrics_port}/metrics"
        child = self._spawn(name, args, [f"{base}/healthz", metrics_url])
        served = ServedModel(files.name, files.version, self.host, port, self.SERVED_PATH,
                             metrics_url, child.proc.pid)
        return served, child

    def baseline(self, files: Any, rate_qps: float, calls: int) -> BaselineInfo:
        """Benchmark the model on the digits suite and save the run as its baseline.

        As a release would: a server instance of its own (the same command, probe and sample
        sink as the live one), benchmarked through its HTTP endpoint, then stopped.
        The baseline holds each latency at two points: the bench client's (`http_client`) and
        the server's probe histogram scraped around each scenario (`model_call`), for single
        stream and for a Poisson run of `calls` requests at the demo's own request rate, so the
        live figures have a baseline measured the same way under the same load. That run comes
        first, on the freshly started and warmed-up instance, not in the wake of the saturating
        single-stream and offline runs. The instance is read every SCRAPE_INTERVAL_S
        throughout, as Prometheus reads the live one.
        """
        served, child = self.model_server(files, "bench server", services.free_port(self.host),
                                          services.free_port(self.host))
        self.pids["bench server"] = served.pid
        try:
            with read_every(served.metrics_url, SCRAPE_INTERVAL_S):
                return self._bench(files, served, rate_qps, calls)
        finally:
            child.stop()

    def _bench(self, files: Any, served: ServedModel, rate_qps: float,
               calls: int) -> BaselineInfo:
        backend = backends.HttpBackend(f"http://{served.host}:{served.port}")
        meter = ScrapedProbe([served.metrics_url], files.name, files.version)
        settings = runner.RunSettings(seed=self.seed, warmup_queries=100,
                                      single_stream_queries=1000, offline_samples=3000,
                                      server=False, fixed_rates_qps=(rate_qps,),
                                      fixed_rate_queries=calls)
        suite = suites.load_suite("digits")
        self.say(f"demo: benchmarking the release ({calls} requests at {rate_qps:g} req/s, "
                 f"~{calls / rate_qps:.0f} s, then single stream and offline) ...")
        t0 = time.monotonic()
        result = runner.run_benchmark(backend, suite, settings, probe=meter)
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
        self.say(f"demo: baseline recorded in {time.monotonic() - t0:.1f} s → {path} "
                 f"({len(b.figures)} figures)")
        intervals: dict[tuple[str, str], tuple[float, float] | None] = {}
        for fixed in result.fixed_rate:
            calls_at = result.model_call.get(fixed.scenario)
            intervals[(result.client_point, fixed.scenario)] = tail.of_values(
                0.99, fixed.latencies_s)
            intervals[("model_call", fixed.scenario)] = \
                tail.of_buckets(0.99, calls_at.buckets) if calls_at else None
        return BaselineInfo(path, Baseline.load(path), tuple(sorted(features)),
                            {k: v for k, v in intervals.items() if v is not None})

    def drift_service(self, interval_s: float, window: int) -> None:
        """`benchwatch drift serve` on the baselines directory (empty until the benchmark records
        the baseline; the service picks it up on its next evaluation), receiving samples over
        HTTP into a durable SQLite WAL spool; a demo run starts from empty windows."""
        (self.workdir / "baselines").mkdir(exist_ok=True)
        spool = self.workdir / "spool.sqlite"
        for stale in (spool, spool.with_name(spool.name + "-wal"),
                      spool.with_name(spool.name + "-shm")):
            stale.unlink(missing_ok=True)
        metrics_port, http_port = self.port("drift"), services.free_port(self.host)
        self.drift_url = f"http://{self.host}:{http_port}"
        self.drift_metrics_url = f"http://{self.host}:{metrics_port}/metrics"
        child = self._spawn("drift service", [
            "-m", "benchwatch", "drift", "serve", "--baselines", str(self.workdir / "baselines"),
            "--state", str(spool), "--host", self.host, "--port", str(metrics_port),
            "--ingest-port", str(http_port), "--interval", f"{interval_s:g}",
            "--min-samples", "100", "--window", str(window)],
            [f"{self.drift_url}/healthz", self.drift_metrics_url])
        self.say(f"demo: drift service (pid {child.proc.pid}) every {interval_s:g} s, samples "
                 f"over HTTP at {self.drift_url}/v1/samples into {spool}; metrics "
                 f"{self.drift_metrics_url}")

    def samples_url(self) -> str:
        if self.drift_url is None:
            raise PartError("a model server needs the drift service's URL for its samples")
        return f"{self.drift_url}/v1/samples"

    def live_server(self, files: Any) -> ServedModel:
        served, _ = self.model_server(files, "model server", self.port("model"),
                                      self.port("metrics"))
        self.probe_metrics_url = served.metrics_url
        self.served = served
        self.say(f"demo: serving {files.name} {files.version} on "
                 f"http://{self.host}:{served.port}{served.path} (pid {served.pid}, ONNX "
                 f"Runtime, {self.SERVED_HOW}); probe metrics {served.metrics_url}; every "
                 f"{self.SAMPLED_EACH} sampled to the drift service")
        return served

    def monitoring(self) -> None:
        """Alertmanager (webhook → drift service) then Prometheus with the deploy rules."""
        if services.find_binary(services.PROMETHEUS_BIN) is None or \
                services.find_binary(*services.ALERTMANAGER_BINS) is None:
            raise PartError("Prometheus/Alertmanager are not installed, so no alert will be "
                            f"sent (drift is still shown): {services.INSTALL_HINT}")
        if self.drift_url is None:
            raise PartError("the drift service has no HTTP endpoint for Alertmanager's webhook")
        demo_rules = self.demo_rules()
        try:
            am = services.start_alertmanager(self.alertmanager_config(), host=self.host,
                                             port=self.port("alertmanager"))
        except services.ServiceError as exc:
            raise PartError(f"Alertmanager did not start: {exc}") from exc
        self.on_close("alertmanager", am.stop)
        self.alertmanager = am
        self.pids["alertmanager"] = am.proc.pid
        targets = {PROBE_JOB: [self._hostport(self.probe_metrics_url)],
                   "benchwatch-drift": [self._hostport(self.drift_metrics_url)]}
        try:
            prom = services.start_prometheus(
                targets, rule_files=demo_rules, alertmanager=am.url,
                scrape_interval=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL,
                host=self.host, port=self.port("prometheus"))
        except services.ServiceError as exc:
            raise PartError(f"Prometheus did not start: {exc}") from exc
        self.on_close("prometheus", prom.stop)
        self.prometheus = prom
        self.pids["prometheus"] = prom.proc.pid
        self.say(f"demo: Prometheus {prom.url} (rules: "
                 f"{', '.join(p.name for p in demo_rules)}), Alertmanager {am.url} → webhook "
                 f"{self.drift_url}/v1/alerts")

    def traffic(self, url: str, rate_qps: float, drift_at_s: float, duration_s: float,
                clean_calls: int = 0) -> int:
        """The traffic generator's process; returns once it has written its first status. Its
        clean quantiles are over `clean_calls` calls after the warm-up (0: all before the
        drift)."""
        self.traffic_status_path.unlink(missing_ok=True)
        child = self._spawn("traffic", [
            "-m", self.TRAFFIC_MODULE, "--url", url, "--rate", f"{rate_qps:g}",
            "--drift-at", f"{drift_at_s:g}", "--duration", f"{duration_s:g}",
            "--workers", str(self.TRAFFIC_WORKERS), "--seed", str(self.seed),
            "--clean-calls", str(clean_calls), "--status", str(self.traffic_status_path)])
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.traffic_status() is None:
            if child.proc.poll() is not None or time.monotonic() > deadline:
                tail = child.log_tail(15)
                child.stop()
                raise PartError(f"the traffic generator did not start:\n{tail}")
            time.sleep(0.1)
        self._traffic = child
        return child.proc.pid

    def probe_view(self) -> tuple[str | None, float]:
        """(URL, seconds between reads) for the demo's view of the live server's probe series:
        what Prometheus last scraped (federation) when it runs, read every second at no cost
        to the server; else the server itself, once per scrape interval as Prometheus would."""
        if self.prometheus is not None:
            match = urllib.parse.urlencode({"match[]": f'{{job="{PROBE_JOB}"}}'})
            return f"{self.prometheus.url}/federate?{match}", 1.0
        return self.probe_metrics_url, SCRAPE_INTERVAL_S

    def traffic_status(self) -> dict[str, Any] | None:
        return demo_traffic.read_status(self.traffic_status_path)

    def traffic_alive(self) -> bool:
        return self._traffic is not None and self._traffic.proc.poll() is None

    @staticmethod
    def _hostport(url: str | None) -> str:
        if not url:
            raise PartError("a metrics endpoint is missing")
        return url.split("://", 1)[1].split("/", 1)[0]

    def alertmanager_config(self) -> dict[str, Any]:
        """The packaged routing (one page per model and version, per-feature alerts inhibited),
        with the demo's webhook as its receiver and group timers short enough for a demo."""
        cfg: dict[str, Any] = yaml.safe_load(assets.read_text(AM_CONFIG))
        cfg["route"].update({"receiver": "benchwatch-demo", "group_wait": "1s",
                             "group_interval": "5s", "repeat_interval": "1h"})
        cfg["receivers"] = [{"name": "benchwatch-demo", "webhook_configs": [{
            "url": f"{self.drift_url}/v1/alerts", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": self.token}}}]}]
        return cfg

    def demo_rules(self) -> list[Path]:
        """The packaged rule files with `for:` and rate windows shortened for a demo."""
        return list(rules.shorten_for(rules.rule_files(), self.workdir / "rules", DEMO_FOR,
                                      range_window=DEMO_RANGE, scale=DEMO_FOR_SCALE))

    def alerts_firing(self) -> list[AlertSeen]:
        """Alerts Alertmanager delivered to the drift service's webhook, first per name."""
        if self.drift_url is None or self.alertmanager is None:
            return []
        try:
            listing = self._get_json(f"{self.drift_url}/v1/alerts")["alerts"]
        except (OSError, ValueError, KeyError, TypeError):
            log.debug("demo: reading the drift service's alerts failed", exc_info=True)
            return []
        first: dict[str, AlertSeen] = {}
        for a in listing:
            if a.get("status") == "firing" and a.get("name") not in first:
                summary = str((a.get("annotations") or {}).get("summary", ""))
                first[a["name"]] = AlertSeen(a["name"], float(a["received_at"]), summary)
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
        if self.drift_url is None:
            return None
        try:
            status = self._get_json(f"{self.drift_url}/v1/status")
        except (OSError, ValueError):
            log.exception("demo: reading the drift service's status failed")
            return None
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
