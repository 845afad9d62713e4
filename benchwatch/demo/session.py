"""`benchwatch demo`: the whole product end to end on embedded defaults, in one command.

Order of events: the example model (the ONNX file that ships with benchwatch) → served
over HTTP (ONNX Runtime, probed) → benchmarked on the digits suite through that endpoint, the
run saved as its baseline → the drift service on the embedded transport (an in-process sink into
a durable SQLite WAL spool) → probes exporting and sampling every request into it → Prometheus +
Alertmanager with deploy/prometheus's rules, routed to the drift service's webhook (when
installed) → steady traffic that drifts at `--drift-at` → a live view → the HTML report. Every
process and port is released on exit, Ctrl-C included.

A Python package the demo needs that is not installed stops it before anything starts, with
`probes.errors.MissingExtraError` naming the extra (`pip install 'benchwatch[demo]'`). A part
that cannot start (`PartError`: no Prometheus binaries, a failed benchmark) makes the demo say
which one and carry on without it, or stop with exit 3 when nothing meaningful is left; it
never pretends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from benchwatch import promtext
from benchwatch.cli.errors import ExitCode
from benchwatch.demo import parts as demo_parts
from benchwatch.demo.parts import PartError
from benchwatch.demo.traffic import Traffic, percentile
from benchwatch.demo.view import DemoStatus, FeatureScore, View
from benchwatch.errors import UsageError
from probes import metric_names as m

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"model": 8000, "metrics": 9464, "drift": 9465, "prometheus": 9090,
                 "alertmanager": 9093}


@dataclass(frozen=True)
class DemoConfig:
    duration_s: float = 120.0
    drift_at_s: float = 40.0
    prometheus: bool = True
    host: str = "127.0.0.1"
    # 0 = any free port; a taken default port falls back to a free one (said in the log)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    rate_qps: float = 40.0
    eval_interval_s: float = 2.0
    workdir: Path | None = None
    live: bool | None = None  # None: a rich live panel when stdout is a TTY
    seed: int = 0

    def validate(self) -> None:
        if self.duration_s <= 0:
            raise UsageError(f"--duration must be > 0 seconds, got {self.duration_s}")
        if not 0 <= self.drift_at_s < self.duration_s:
            raise UsageError(f"--drift-at must be in [0, --duration); got {self.drift_at_s} "
                             f"with --duration {self.duration_s}")
        if self.rate_qps <= 0:
            raise UsageError(f"--rate must be > 0 requests/s, got {self.rate_qps}")
        for name, port in self.ports.items():
            if not 0 <= port <= 65535:
                flag = "--port" if name == "model" else f"--{name}-port"
                raise UsageError(f"{flag} must be in 0..65535 (0 = any free port), got {port}")


DRIFT_ALERT = "BenchwatchFeatureDrift"


@dataclass(frozen=True)
class DemoResult:
    exit_code: int
    workdir: str
    report_path: str | None
    drift_started_at: float | None  # unix time of the first drifted request
    drift_detected_at: float | None  # first evaluation with a feature over its threshold
    alert_fired_at: float | None  # the drift alert reached the webhook via Alertmanager
    alert: str | None  # its summary
    other_alerts: dict[str, float]  # any other alert that fired: name -> unix time
    baseline: dict[str, float]  # the benchmark's figures the live ones are compared with
    last: dict[str, float | None]  # the live figures at the end (p50_s, p99_s, qps, J/inference)
    gpu: bool
    requests: int
    errors: int
    missing: tuple[str, ...]
    interrupted: bool


class _Stop:
    """SIGINT/SIGTERM set an event the main loop watches; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _workdir(cfg: DemoConfig) -> Path:
    if cfg.workdir is not None:
        path = Path(cfg.workdir)
    else:
        path = Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


class _Progress:
    """Figures the live view needs that come from more than one scrape."""

    def __init__(self) -> None:
        self.prev: promtext.Scrape | None = None
        self.counts: deque[tuple[float, float]] = deque(maxlen=64)  # (at, requests so far)

    def latency(self, now: promtext.Scrape | None) -> tuple[float | None, float | None,
                                                                 float | None]:
        if now is None:
            return None, None, None
        cur = promtext.buckets(now, m.LATENCY)
        old = None if self.prev is None else promtext.buckets(self.prev, m.LATENCY)
        window = promtext.delta(cur, old)
        p50 = promtext.quantile(0.5, window)
        p99 = promtext.quantile(0.99, window)
        # keep the older scrape for ~10 s so quantiles describe a few seconds, not one tick
        if self.prev is None or now.at - self.prev.at > 10:
            self.prev = now
        # throughput over the last ~5 s of scrapes
        self.counts.append((now.at, now.total(m.REQUESTS)))
        while len(self.counts) > 2 and now.at - self.counts[1][0] >= 5:
            self.counts.popleft()
        (t_old, c_old), (t_new, c_new) = self.counts[0], self.counts[-1]
        qps = (c_new - c_old) / (t_new - t_old) if t_new > t_old else None
        return p50, p99, qps


def _scores(s: promtext.Scrape | None) -> tuple[FeatureScore, ...]:
    if s is None:
        return ()
    out = []
    thresholds = {dict(k).get("feature"): v for k, v in s.get(m.DRIFT_THRESHOLD).items()}
    detected = {dict(k).get("feature"): v for k, v in s.get(m.DRIFT_DETECTED).items()}
    for labels, score in s.get(m.DRIFT_SCORE).items():
        d = dict(labels)
        feat = d.get("feature", "?")
        out.append(FeatureScore(feat, score, thresholds.get(feat), detected.get(feat, 0) >= 1,
                                d.get("test", "")))
    return tuple(sorted(out, key=lambda f: (-f.detected, -f.score)))


def run_demo(cfg: DemoConfig, out: IO[str] | None = None) -> DemoResult:
    cfg.validate()
    out = out or sys.stdout
    view = View("benchwatch demo — digits model", live=cfg.live, out=out)
    workdir = _workdir(cfg)
    state = _RunState()
    with _Stop() as stop, contextlib.ExitStack() as stack:
        try:
            view.say(f"demo: working directory {workdir}")
            parts = demo_parts.Parts(cfg.host, cfg.ports, workdir, view.say, cfg.seed)
            stack.callback(parts.close)
            _start_parts(cfg, parts, view, state)
            if stop.event.is_set():
                raise KeyboardInterrupt
            _drive(cfg, parts, view, state, stop.event)
            if not state.interrupted:
                state.report_path = _report(parts, cfg, view)
        except KeyboardInterrupt:
            state.interrupted = True
            view.say("demo: interrupted — stopping everything")
        except PartError as exc:
            state.missing.append(str(exc))
            view.say(f"demo: cannot continue — {exc}")
            state.exit_code = ExitCode.COULD_NOT_RUN
        finally:
            if state.traffic is not None:
                state.traffic.stop()
    if state.interrupted:
        state.exit_code = ExitCode.INTERRUPTED
    return _finish(workdir, state, view)


def _report(parts: demo_parts.Parts, cfg: DemoConfig, view: View) -> str | None:
    try:
        return parts.report(cfg.duration_s)
    except Exception as exc:  # a failed report must not hide the run's other results
        log.exception("demo: the report failed")
        view.say(f"demo: the report from Prometheus failed ({exc}); writing the drift "
                 "service's last evaluation instead")
        return parts.plain_report()


@dataclass
class _RunState:
    traffic: Traffic | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    drift_detected_at: float | None = None
    alert_fired_at: float | None = None
    alert: str | None = None
    other_alerts: dict[str, float] = field(default_factory=dict)
    report_path: str | None = None
    last: dict[str, float | None] = field(default_factory=dict)
    gpu: bool = False
    interrupted: bool = False
    exit_code: int = 0


def _start_parts(cfg: DemoConfig, parts: demo_parts.Parts, view: View, state: _RunState) -> None:
    model = parts.model()
    served = parts.model_server(model)
    state.baseline = dict(parts.baseline(model, served).figures)
    # a window of ~20 s of traffic: it turns over soon after the drift begins
    parts.drift_service(cfg.eval_interval_s, window=max(300, int(cfg.rate_qps * 20)))
    parts.probes()
    if cfg.prometheus:
        try:
            parts.monitoring()
        except PartError as exc:
            state.missing.append(str(exc))
            view.say(f"demo: going on without alerts — {exc}")
    else:
        view.say("demo: --no-prometheus: no Prometheus/Alertmanager, so no alert; drift is "
                 "shown from the drift service's own endpoint")
    state.traffic = Traffic(cfg.host, served.port, path=served.path, rate_qps=cfg.rate_qps,
                            drift_at_s=cfg.drift_at_s, duration_s=cfg.duration_s, seed=cfg.seed,
                            body=served.body)


def _drive(cfg: DemoConfig, parts: demo_parts.Parts, view: View, state: _RunState,
           stop: threading.Event) -> None:
    traffic = state.traffic
    assert traffic is not None
    view.say(f"demo: traffic {cfg.rate_qps:.0f} req/s for {cfg.duration_s:.0f} s, drifting at "
             f"{cfg.drift_at_s:.0f} s")
    traffic.start()
    prog = _Progress()
    t0 = time.monotonic()
    drift_said = False
    snap: DemoStatus | None = None
    with view:
        while True:
            elapsed = time.monotonic() - t0
            now = time.time()
            probe = promtext.scrape(parts.probe_metrics_url, now) \
                if parts.probe_metrics_url else None
            drift = promtext.scrape(parts.drift_metrics_url, now) \
                if parts.drift_metrics_url else None
            p50, p99, qps = prog.latency(probe)
            stats = traffic.stats()
            scores = _scores(drift)
            began = traffic.drift_started_at
            if began is not None and not drift_said:
                drift_said = True
                view.say(f"demo: drift starts now (t={elapsed:.1f} s): lower contrast and "
                         "sensor noise on every request")
            if began is not None and state.drift_detected_at is None and \
                    any(f.detected for f in scores):
                state.drift_detected_at = now
                top = next(f for f in scores if f.detected)
                view.say(f"demo: the drift service sees drift on {top.feature} (score "
                         f"{top.score:.3f} > {top.threshold or 0:.3f}) {now - began:.1f} s "
                         "after it began")
            for alert in parts.alerts_firing():
                if alert.name == DRIFT_ALERT and state.alert_fired_at is None:
                    state.alert_fired_at, state.alert = alert.received_at, alert.summary
                elif alert.name != DRIFT_ALERT and alert.name not in state.other_alerts:
                    state.other_alerts[alert.name] = alert.received_at
                else:
                    continue
                after = "" if began is None else \
                    f" {alert.received_at - began:.1f} s after the drift began"
                view.say(f"demo: ALERT {alert.name} fired{after}: {alert.summary}")
            energy = probe.total(m.ENERGY) if probe else 0.0
            count = probe.total(m.REQUESTS) if probe else 0.0
            recent = stats.latencies_s[-500:]
            snap = DemoStatus(
                elapsed_s=elapsed, duration_s=cfg.duration_s, drift_at_s=cfg.drift_at_s,
                drifting=stats.drifting, requests=stats.sent, errors=stats.errors, qps=qps,
                p50_s=p50, p99_s=p99, client_p50_s=percentile(recent, 0.5),
                client_p99_s=percentile(recent, 0.99), baseline=state.baseline, gpu=parts.gpu,
                joules_per_inference=(energy / count) if (energy and count) else None,
                scores=scores, alert=state.alert or next(iter(state.other_alerts), None))
            view.update(snap)
            state.last = {"p50_s": p50, "p99_s": p99, "qps": qps,
                          "client_p50_s": snap.client_p50_s, "client_p99_s": snap.client_p99_s,
                          "joules_per_inference": snap.joules_per_inference}
            state.gpu = parts.gpu
            if elapsed >= cfg.duration_s:
                break
            if stop.wait(0.5):
                state.interrupted = True
                view.say("demo: interrupted — stopping everything")
                break
    traffic.stop()
    if snap is not None and not state.interrupted:
        view.final(snap)


def _finish(workdir: Path, state: _RunState, view: View) -> DemoResult:
    t = state.traffic
    stats = t.stats() if t else None
    result = DemoResult(
        exit_code=state.exit_code, workdir=str(workdir), report_path=state.report_path,
        drift_started_at=t.drift_started_at if t else None,
        drift_detected_at=state.drift_detected_at, alert_fired_at=state.alert_fired_at,
        alert=state.alert, other_alerts=dict(state.other_alerts), baseline=dict(state.baseline),
        last=dict(state.last), gpu=state.gpu,
        requests=stats.sent if stats else 0, errors=stats.errors if stats else 0,
        missing=tuple(state.missing), interrupted=state.interrupted)
    summary = workdir / "summary.json"
    summary.write_text(json.dumps(asdict(result), indent=2))
    view.say(f"summary: {summary}")
    if result.report_path:
        view.say(f"report: {result.report_path}")
    return result
