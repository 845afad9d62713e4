"""`benchwatch demo`: the whole product end to end on embedded defaults, in one command.

Order of events, each part its own process as it would be deployed: the example model (the
ONNX file that ships with benchwatch) → the release benchmark: a probed server instance
benchmarked on the digits suite through its HTTP endpoint, the run saved as the baseline, the
instance stopped → the drift service (`benchwatch drift serve`, samples over HTTP into a durable
SQLite WAL spool) → the model server (`python -m benchwatch.example.server`, probes exporting
and sampling every request to the drift service) → Prometheus + Alertmanager with
deploy/prometheus's rules, routed to the drift service's webhook (when installed) → the traffic
generator (`python -m benchwatch.demo.traffic`), steady traffic that drifts at `--drift-at` →
a live view → the HTML report. The demo process itself only orchestrates and reads endpoints, so
nothing it does shares a CPU thread or a GIL with the model it measures. Every process and port
is released on exit, Ctrl-C included.

The live view holds each live figure only against a baseline figure measured at the same point
(`drift.figures`): the probe's model-call latency against the baseline's `model_call` figure,
the traffic's client latency against `http_client`; where the baseline has none it says so.
Both were measured under the same conditions: the same Poisson load from the same kind of
client (`demo.traffic`), the server read once per scrape interval (`parts.SCRAPE_INTERVAL_S`),
the same number of calls; each p99 comes with the interval its calls allow (`demo.tail`), and
the comparison says when those calls cannot tell a 1.2x difference from chance.

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
import math
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
from benchwatch.bench.stats import min_queries
from benchwatch.cli.errors import ExitCode
from benchwatch.demo import parts as demo_parts
from benchwatch.demo import tail
from benchwatch.demo.parts import PartError
from benchwatch.demo.traffic import WARMUP_REQUESTS, percentile
from benchwatch.demo.view import DemoStatus, FeatureScore, View
from benchwatch.errors import UsageError
from drift.baseline import Baseline
from drift.figures import Figure
from probes import metric_names as m

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"model": 8000, "metrics": 9464, "drift": 9462, "prometheus": 9090,
                 "alertmanager": 9093}


@dataclass(frozen=True)
class DemoConfig:
    duration_s: float = 120.0
    drift_at_s: float = 40.0
    prometheus: bool = True
    host: str = "127.0.0.1"
    # 0 = any free port; a taken default port falls back to a free one (said in the log)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    rate_qps: float | None = None  # None: the model's own rate (RATE_QPS)
    eval_interval_s: float = 2.0
    workdir: Path | None = None
    live: bool | None = None  # None: a rich live panel when stdout is a TTY
    seed: int = 0
    model: str = "digits"  # or "lm": the generative example (benchwatch.demo.lm_parts)

    def validate(self) -> None:
        if self.model not in ("digits", "lm"):
            raise UsageError(f"--model must be digits or lm, got {self.model!r}")
        # finite and bounded too: nan or inf would make the demo wait forever or overflow
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= 86_400):
            raise UsageError(f"--duration must be > 0 seconds and at most a day, got "
                             f"{self.duration_s}")
        if not 0 <= self.drift_at_s < self.duration_s:
            raise UsageError(f"--drift-at must be in [0, --duration); got {self.drift_at_s} "
                             f"with --duration {self.duration_s}")
        if not (math.isfinite(self.rate) and 0 < self.rate <= 100_000):
            raise UsageError(f"--rate must be > 0 requests/s and at most 100000, got "
                             f"{self.rate}")
        for name, port in self.ports.items():
            if not 0 <= port <= 65535:
                flag = "--port" if name == "model" else f"--{name}-port"
                raise UsageError(f"{flag} must be in 0..65535 (0 = any free port), got {port}")

    @property
    def rate(self) -> float:
        return self.rate_qps if self.rate_qps is not None else RATE_QPS[self.model]


# The demo's default request rate per model. The classifier's p99 rests on its calls' slowest
# 1%: at 200 req/s the ~35 s before the drift hold ~6 900 calls (at 40 req/s, 1 300: a p99 of
# its 13th-slowest call, which two identical windows put 0.55-1.78x apart). The language
# model's streams cost tens of milliseconds each, so it keeps 40.
RATE_QPS = {"digits": 200.0, "lm": 40.0}

DRIFT_ALERT = "BenchwatchModelDrift"  # the one page per model and version


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
    baseline: list[dict[str, Any]]  # the benchmark's figures (drift.Figure.to_dict())
    # live vs baseline per measurement point over the clean traffic before the drift:
    # {point: {live_p50_s, live_p99_s, live_calls, baseline_calls, baseline_p50_s,
    #          baseline_p99_s, baseline_scenario, baseline_rate_qps, p99_ratio,
    #          live_p99_interval_s, baseline_p99_interval_s (95%, `demo.tail`),
    #          p99_ratio_range (the ratio with each p99 anywhere in its interval), verdict}}
    before_drift: dict[str, dict[str, Any]]
    last: dict[str, float | None]  # the live figures at the end (p50_s, p99_s, qps, J/inference)
    gpu: bool
    requests: int
    errors: int
    missing: tuple[str, ...]
    interrupted: bool
    processes: dict[str, int]  # part -> pid (the demo, servers, drift service, traffic, ...)


class _Stop:
    """SIGINT/SIGTERM set an event the main loop watches; a second Ctrl-C interrupts at once.
    While `at_once` (starting the parts: the benchmark alone takes ~50 s) the first one does."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at_once = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() or self.at_once:
            self.event.set()
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
    """Figures the live view needs that come from more than one read of the probe series."""

    def __init__(self) -> None:
        # (at, requests so far, cumulative latency buckets), one per new scrape, oldest first
        self.seen: deque[tuple[float, float, dict[float, float]]] = deque(maxlen=64)

    def latency(self, now: promtext.Scrape | None) -> tuple[float | None, float | None,
                                                                 float | None, int | None]:
        """(p50, p99, requests/s, calls the quantiles rest on). The quantiles are over the
        most recent calls that make a p99 (p99's minimum, `min_queries`: ~17 s at 40 req/s),
        fewer only while the run is younger; requests/s over the last >= 10 s."""
        if now is None:
            return None, None, None, None
        cur, count = promtext.buckets(now, m.LATENCY), now.total(m.REQUESTS)
        if not self.seen or count != self.seen[-1][1]:  # read again before a new scrape: same
            self.seen.append((now.at, count, cur))
        need = min_queries(0.99)
        total = max(cur.values(), default=0.0)
        old = next((b for _, _, b in reversed(self.seen)
                    if total - max(b.values(), default=0.0) >= need), self.seen[0][2])
        window = promtext.delta(cur, old if old is not cur else None)
        calls = int(max(window.values(), default=0.0))
        spans = [(t, c) for t, c, _ in self.seen if self.seen[-1][0] - t >= 10]
        (t_old, c_old), (t_new, c_new) = (spans or [self.seen[0][:2]])[-1], self.seen[-1][:2]
        qps = (c_new - c_old) / (t_new - t_old) if t_new > t_old else None
        return promtext.quantile(0.5, window), promtext.quantile(0.99, window), qps, calls


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
    view = View("benchwatch demo — " + ("charlm language model (streaming)" if cfg.model == "lm"
                                        else "digits model"), live=cfg.live, out=out)
    workdir = _workdir(cfg)
    state = _RunState()
    with _Stop() as stop, contextlib.ExitStack() as stack:
        try:
            view.say(f"demo: working directory {workdir}")
            parts = _parts_class(cfg.model)(cfg.host, cfg.ports, workdir, view.say, cfg.seed)
            state.parts = parts
            stack.callback(parts.close)
            stop.at_once = True
            _start_parts(cfg, parts, view, state)
            stop.at_once = False
            if stop.event.is_set():
                raise KeyboardInterrupt
            _drive(cfg, parts, view, state, stop.event)
            if not state.interrupted:
                state.report_path = _report(parts, cfg, view)
        except KeyboardInterrupt:
            stop.at_once = False  # stopping the parts: only a second Ctrl-C cuts that short
            state.interrupted = True
            view.say("demo: interrupted — stopping everything")
        except PartError as exc:
            state.missing.append(str(exc))
            view.say(f"demo: cannot continue — {exc}")
            state.exit_code = ExitCode.COULD_NOT_RUN
    if state.interrupted:
        state.exit_code = ExitCode.INTERRUPTED
    return _finish(workdir, state, view)


def _parts_class(model: str) -> type[demo_parts.Parts]:
    if model == "lm":
        from benchwatch.demo.lm_parts import LmParts

        return LmParts
    return demo_parts.Parts


def _report(parts: demo_parts.Parts, cfg: DemoConfig, view: View) -> str | None:
    try:
        return parts.report(cfg.duration_s)
    except Exception as exc:  # a failed report must not hide the run's other results
        log.exception("demo: the report failed")
        view.say(f"demo: the report from Prometheus failed ({exc}); writing the drift "
                 "service's last evaluation instead")
        return parts.plain_report()


# the live figures the view compares, each with the point the baseline must have measured it at
POINTS = {"model_call": "the probe's model-call time in the server",
          "http_client": "the traffic generator's end-to-end HTTP time"}
PAIRED = ("latency_p50_s", "latency_p99_s", "energy_per_inference_j")

# The baseline's fixed-rate run is as long as the live window it is compared with (the clean
# traffic after its warm-up), so both p99s rest on the same number of calls spread over the
# same time on the same machine: a p99 of ~760 calls is its 8th-slowest call, and on a busy
# 2-core machine one burst of someone else's work moves it 2x. At least p99's minimum + 100
# calls; at most BENCH_MAX_S of the demo's start-up (the live window is then cut to as many).
# The live model-call window's ends are reads of the server when the traffic has sent its
# warm-up and then this many calls (`_window_edge_due`); the scrape interval `bench_calls`
# leaves out is the margin those reads need before the drift. The traffic generator's client
# window is cut to the same count (`--clean-calls`).
BENCH_MAX_S = 60.0


def bench_calls(cfg: DemoConfig) -> int:
    """Requests of the bench's fixed-rate run: as many as the live clean window holds."""
    live = int(cfg.rate * (cfg.drift_at_s - demo_parts.SCRAPE_INTERVAL_S)) - WARMUP_REQUESTS
    return max(min_queries(0.99) + 100, min(live, int(cfg.rate * BENCH_MAX_S)))


@dataclass
class _RunState:
    parts: demo_parts.Parts | None = None
    baseline: Baseline | None = None
    at_point: dict[str, dict[str, Figure]] = field(default_factory=dict)
    traffic: dict[str, Any] | None = None  # the traffic generator's last status
    warm_probe: promtext.Scrape | None = None  # the first probe scrape after the warm-up
    clean_probe: promtext.Scrape | None = None  # the live window's end: before the drift,
    # at the first scrape with the bench's number of calls after the warm-up (`bench_calls`)
    window_calls: int = 0  # the bench's fixed-rate calls, which the live window matches
    # (point, scenario) -> the bench's p99 interval there (`BaselineInfo.p99_intervals`)
    p99_intervals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
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


def baseline_at_points(baseline: Baseline, rate_qps: float) -> dict[str, dict[str, Figure]]:
    """{point: {figure name: the baseline's figure at that point}} for the figures the view
    pairs; a name absent at a point means the baseline measured none there. Among a point's
    scenarios, the one whose request rate is nearest the demo's."""
    out: dict[str, dict[str, Figure]] = {}
    for point in POINTS:
        found = {name: baseline.figure(name, point, rate_qps=rate_qps) for name in PAIRED}
        out[point] = {name: f for name, f in found.items() if f is not None}
    return out


def _start_parts(cfg: DemoConfig, parts: demo_parts.Parts, view: View, state: _RunState) -> None:
    files = parts.model()
    state.window_calls = bench_calls(cfg)
    # the drift service first: the benchmarked server samples to it exactly as the live one
    # will; a window of ~20 s of traffic turns over soon after the drift begins
    parts.drift_service(cfg.eval_interval_s, window=max(300, int(cfg.rate * 20)))
    info = parts.baseline(files, cfg.rate, state.window_calls)
    state.baseline = info.baseline
    state.p99_intervals = info.p99_intervals
    state.at_point = baseline_at_points(info.baseline, cfg.rate)
    for point, what in POINTS.items():
        if not state.at_point[point]:
            view.say(f"demo: the baseline has no figure at {point} ({what}); the view says "
                     "so rather than compare it with a figure measured elsewhere")
    parts.live_server(files)
    if cfg.prometheus:
        try:
            parts.monitoring()
        except PartError as exc:
            state.missing.append(str(exc))
            view.say(f"demo: going on without alerts — {exc}")
    else:
        view.say("demo: --no-prometheus: no Prometheus/Alertmanager, so no alert; drift is "
                 "shown from the drift service's own endpoint")


def _drive(cfg: DemoConfig, parts: demo_parts.Parts, view: View, state: _RunState,
           stop: threading.Event) -> None:
    served = parts.served
    assert served is not None
    view.say(f"demo: traffic {cfg.rate:g} req/s for {cfg.duration_s:g} s, drifting at "
             f"{cfg.drift_at_s:g} s")
    pid = parts.traffic(f"http://{served.host}:{served.port}{served.path}", cfg.rate,
                        cfg.drift_at_s, cfg.duration_s, state.window_calls)
    view.say(f"demo: traffic generator running (pid {pid})")
    prog = _Progress()
    drift_said = False
    snap: DemoStatus | None = None
    probe: promtext.Scrape | None = None
    probe_at = observed_at = 0.0
    scores: tuple[FeatureScore, ...] = ()
    p50 = p99 = qps = None
    p99_calls: int | None = None
    probe_url, probe_every = parts.probe_view()
    with view:
        while True:
            now = time.time()
            status = parts.traffic_status() or state.traffic or {}
            state.traffic = status
            started = float(status.get("started_at") or now)
            elapsed = now - started
            clean = now < started + cfg.drift_at_s - 0.25
            if probe_url and now - probe_at >= probe_every:
                probe, probe_at = promtext.scrape(probe_url, now), now
                p50, p99, qps, p99_calls = prog.latency(probe)
                if clean:
                    _extend_window(state, probe)
            if clean and parts.probe_metrics_url and _window_edge_due(state, status):
                _extend_window(state, promtext.scrape(parts.probe_metrics_url, now))
            began = status.get("drift_started_at")
            if began is not None and not drift_said:
                drift_said = True
                view.say(f"demo: drift starts now (t={elapsed:.1f} s): {parts.DRIFT}")
            # the drift service's figures and alerts change once per evaluation: reading them
            # more often would only add load beside the served model
            if now - observed_at >= cfg.eval_interval_s:
                observed_at = now
                scores = _scores(promtext.scrape(parts.drift_metrics_url, now)
                                 if parts.drift_metrics_url else None)
                _note_alerts(parts, view, state, began)
            if began is not None and state.drift_detected_at is None and \
                    any(f.detected for f in scores):
                state.drift_detected_at = now
                top = next(f for f in scores if f.detected)
                view.say(f"demo: the drift service sees drift on {top.feature} (score "
                         f"{top.score:.3f} > {top.threshold or 0:.3f}) {now - began:.1f} s "
                         "after it began")
            energy = probe.total(m.ENERGY) if probe else 0.0
            count = probe.total(m.REQUESTS) if probe else 0.0
            recent = status.get("recent_latencies_s") or []
            state.gpu = bool(probe and probe.get(m.HW_ENERGY))
            snap = DemoStatus(
                elapsed_s=elapsed, duration_s=cfg.duration_s, drift_at_s=cfg.drift_at_s,
                drifting=began is not None, requests=int(status.get("sent", 0)),
                errors=int(status.get("errors", 0)), qps=qps, p50_s=p50, p99_s=p99,
                p99_calls=p99_calls, client_calls=len(recent),
                client_p50_s=percentile(recent, 0.5), client_p99_s=percentile(recent, 0.99),
                baseline=state.at_point, gpu=state.gpu,
                joules_per_inference=(energy / count) if (energy and count) else None,
                scores=scores, alert=state.alert or next(iter(state.other_alerts), None))
            view.update(snap)
            state.last = {"p50_s": p50, "p99_s": p99, "qps": qps,
                          "client_p50_s": snap.client_p50_s, "client_p99_s": snap.client_p99_s,
                          "joules_per_inference": snap.joules_per_inference}
            # the generator stops itself after --duration; the grace covers its last status
            if status.get("done") or not parts.traffic_alive() or \
                    elapsed >= cfg.duration_s + 15:
                break
            if stop.wait(0.5):
                state.interrupted = True
                view.say("demo: interrupted — stopping everything")
                break
    _note_alerts(parts, view, state, (state.traffic or {}).get("drift_started_at"))
    if snap is not None and not state.interrupted:
        view.final(snap)


def _extend_window(state: _RunState, read: promtext.Scrape | None) -> None:
    """A read of the model-call histogram during clean traffic: the live window starts at the
    first one past the warm-up and ends at the latest, until it holds the bench's calls."""
    if read is None or _window_full(state):
        return
    calls = read.total(m.REQUESTS)
    if state.warm_probe is None:
        if calls >= WARMUP_REQUESTS:
            state.warm_probe = read
    # Prometheus' copy (the view's reads) can be older than the server's own
    if state.clean_probe is None or calls > state.clean_probe.total(m.REQUESTS):
        state.clean_probe = read


def _window_edge_due(state: _RunState, traffic: dict[str, Any]) -> bool:
    """The traffic has just sent the warm-up, or the bench's calls since the window began: the
    server is read then, as the bench reads it at each end of its run, so the window holds the
    bench's calls and not whatever fell between two scrapes (5 s: 1 000 calls at 200 req/s)."""
    sent = int(traffic.get("sent", 0))
    if state.warm_probe is None:
        return sent >= WARMUP_REQUESTS
    return not _window_full(state) and \
        sent - state.warm_probe.total(m.REQUESTS) >= state.window_calls


def _window_full(state: _RunState) -> bool:
    """The live window holds as many calls as the bench's fixed-rate run did."""
    if state.warm_probe is None or state.clean_probe is None:
        return False
    calls = state.clean_probe.total(m.REQUESTS) - state.warm_probe.total(m.REQUESTS)
    return calls >= state.window_calls


def _note_alerts(parts: demo_parts.Parts, view: View, state: _RunState,
                 began: float | None) -> None:
    for alert in parts.alerts_firing():
        if alert.name == DRIFT_ALERT and state.alert_fired_at is None:
            state.alert_fired_at = alert.received_at
            state.alert = f"{alert.name}: {alert.summary}"
        elif alert.name != DRIFT_ALERT and alert.name not in state.other_alerts:
            state.other_alerts[alert.name] = alert.received_at
        else:
            continue
        when = "" if began is None else \
            f" {alert.received_at - began:+.1f} s from the start of the drift"
        view.say(f"demo: ALERT {alert.name} fired{when}: {alert.summary}")


def before_drift(state: _RunState) -> dict[str, dict[str, Any]]:
    """Live and baseline latency per point over the clean traffic (before the drift), each p99
    with its 95% interval from the calls it rests on, and what their ratio can tell."""
    clean = (state.traffic or {}).get("clean") or {}
    interval = clean.get("p99_interval_s")
    live: dict[str, tuple[float | None, float | None, float | None, Any]] = {
        "http_client": (clean.get("p50_s"), clean.get("p99_s"), clean.get("n"),
                        tuple(interval) if interval else None)}
    if state.clean_probe is not None:
        window = promtext.buckets(state.clean_probe, m.LATENCY)
        warm = state.warm_probe
        if warm is not None and state.clean_probe.total(m.REQUESTS) - \
                warm.total(m.REQUESTS) >= WARMUP_REQUESTS:  # the warm-up left out, as the bench
            window = promtext.delta(window, promtext.buckets(warm, m.LATENCY))
        live["model_call"] = (promtext.quantile(0.5, window), promtext.quantile(0.99, window),
                              max(window.values(), default=0.0), tail.of_buckets(0.99, window))
    else:
        live["model_call"] = (None, None, None, None)
    out: dict[str, dict[str, Any]] = {}
    for point, (p50, p99, calls, live_iv) in live.items():
        at = state.at_point.get(point, {})
        b50, b99 = at.get("latency_p50_s"), at.get("latency_p99_s")
        base_iv = state.p99_intervals.get((point, b99.scenario)) if b99 else None
        cmp = tail.Comparison.of(p99, live_iv, b99.value, base_iv) \
            if (p99 and live_iv and b99 and base_iv) else None
        out[point] = {
            "live_p50_s": p50, "live_p99_s": p99,
            "live_calls": int(calls) if calls is not None else None,
            "baseline_calls": state.window_calls or None,
            "baseline_p50_s": b50.value if b50 else None,
            "baseline_p99_s": b99.value if b99 else None,
            "baseline_scenario": b99.scenario if b99 else None,
            "baseline_rate_qps": b99.rate_qps if b99 else None,
            "p99_ratio": p99 / b99.value if (p99 and b99 and b99.value) else None,
            "live_p99_interval_s": live_iv, "baseline_p99_interval_s": base_iv,
            "p99_ratio_range": [cmp.low, cmp.high] if cmp else None,
            "verdict": cmp.verdict if cmp else None}
    return out


def _finish(workdir: Path, state: _RunState, view: View) -> DemoResult:
    status = state.traffic or {}
    result = DemoResult(
        exit_code=state.exit_code, workdir=str(workdir), report_path=state.report_path,
        drift_started_at=status.get("drift_started_at"),
        drift_detected_at=state.drift_detected_at, alert_fired_at=state.alert_fired_at,
        alert=state.alert, other_alerts=dict(state.other_alerts),
        baseline=[f.to_dict() for f in state.baseline.figures] if state.baseline else [],
        before_drift=before_drift(state), last=dict(state.last), gpu=state.gpu,
        requests=int(status.get("sent", 0)), errors=int(status.get("errors", 0)),
        missing=tuple(state.missing), interrupted=state.interrupted,
        processes=dict(state.parts.pids) if state.parts else {})
    summary = workdir / "summary.json"
    summary.write_text(json.dumps(asdict(result), indent=2))
    for point, fig in result.before_drift.items():
        if fig["live_p99_s"] is not None:
            base = "no baseline at this point" if fig["baseline_p99_s"] is None else \
                f"baseline p99 {fig['baseline_p99_s'] * 1000:.3f} ms ({fig['baseline_scenario']}" \
                f", {fig['baseline_calls']} calls), live/baseline {fig['p99_ratio']:.2f}x"
            if fig["p99_ratio_range"]:
                low, high = fig["p99_ratio_range"]
                base += f" ({low:.2f}-{high:.2f} within the p99s' 95% intervals: {fig['verdict']})"
            view.say(f"demo: before the drift, {point}: live p99 "
                     f"{fig['live_p99_s'] * 1000:.3f} ms ({fig['live_calls']} calls); {base}")
    view.say(f"summary: {summary}")
    if result.report_path:
        view.say(f"report: {result.report_path}")
    return result
