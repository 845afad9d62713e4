"""The drift service: windows from the collector, compared with baselines on an interval.

`DriftService(ServiceConfig(baselines_dir=...)).start()` loads every baseline in the directory
(a corrupt one, one for another schema, or one whose file name disagrees with its model is
refused with a logged reason and the others are served), opens the window store (SQLite WAL at
`state_path`: windows survive restarts and kill -9), and serves:

- Prometheus metrics on `host:metrics_port` (see `drift.service.metrics`),
- HTTP on `host:ingest_port` (None: no HTTP): `POST /v1/samples` (collector ingest),
  `POST /v1/labels` (delayed labels), `POST /v1/alerts` (Alertmanager webhook, bearer token or
  HMAC), `GET /v1/alerts`, `GET /v1/status`, `POST /v1/acknowledge` (silence a firing
  feature until it clears once), `GET /healthz`.
- `service.sink()`: the embedded (in-process) transport for `probes.configure(sink=...)`.

Every `interval_s` it compares each baseline feature's live window with the baseline's
reference, controls the family-wise error across a model's features with Holm's step-down
procedure (`drift.compare_features`: the one multi-feature verdict), remembers since when
each feature has been drifting, and publishes the figures.
Optionally (`stream_ert`) a CUSUM detector per numeric feature sees every value once and
latches (`test="cusum"`), calibrated to a mean number of values between false alarms.
The evaluator thread logs and survives any error; the serving path is never involved.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector import Collector, InProcessSink, WindowStore
from collector.http_server import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_SAMPLES,
    JsonHttpServer,
    ServerOptions,
    add_samples_route,
    is_loopback,
)
from drift.features import FeatureComparison, compare_features
from drift.reference_size import min_reference_size, reference_size
from drift.result import DriftError
from drift.service.alerts import AlertInbox, WebhookVerifier
from drift.service.baselines import BaselineSet, ServedBaseline, load_baselines
from drift.service.labels import LabelStore
from drift.service.metrics import FeatureFigures, ServiceFigures, ServiceMetrics
from drift.service.stats import estimate_accuracy
from drift.streaming import StreamDetector

log = logging.getLogger(__name__)

SINCE_KEY = "drift_since"
MAX_INTERVAL_S = 86_400.0  # a day: longer makes the evaluation-stale alert meaningless
DEFAULT_MAX_AGE_S = 300.0  # windows age out after 5 minutes (docs/deploy.md "Alert routing")


@dataclass(frozen=True)
class ServiceConfig:
    baselines_dir: Path
    state_path: Path | None = None  # None keeps windows in memory (lost at exit)
    host: str = "127.0.0.1"
    # below the probe's 9464 + BENCHWATCH_PROMETHEUS_PORT_SPAN, so they never collide with it
    metrics_port: int = 9462  # 0: any free port
    ingest_port: int | None = 9463  # None: no HTTP server (embedded transport only)
    interval_s: float = 30.0
    token: str | None = None  # required for HTTP when host is not loopback
    webhook_token: str | None = None  # Alertmanager's bearer token (default: `token`)
    webhook_hmac_secret: str | None = None
    alpha: float = 0.05
    min_samples: int = 100  # a window smaller than this is not tested
    max_per_feature: int = 5000
    # a window holds only values that arrived in the last `max_age_s` seconds (None: by count
    # only), so drift resolves within about this long once the traffic is back to normal,
    # and a model whose traffic stopped stops being judged on old values
    max_age_s: float | None = DEFAULT_MAX_AGE_S
    require_features: bool = True  # samples lacking a baseline feature are rejected
    max_body: int = DEFAULT_MAX_BODY
    max_samples: int = DEFAULT_MAX_SAMPLES  # per POST /v1/samples (413 past it)
    server: ServerOptions = ServerOptions()  # HTTP timeouts, connection cap, TLS
    # streaming CUSUM per numeric feature (test="cusum"), calibrated so the mean number of
    # values between false alarms is `stream_ert`; 0 = off. Pick it from the traffic: at
    # 50 samples/s, 1e8 values is about one false alarm per feature every 23 days.
    stream_ert: float = 0.0
    stream_k: float = 0.25
    # configured prices, exported as gauges for the scorecard's cost rules (None: not set)
    price_usd_per_hour: float | None = None  # one serving process (scrape target)
    price_usd_per_kwh: float | None = None

    def __post_init__(self) -> None:
        # nan would make the evaluator spin, inf (or 1e300) kill it: Event.wait overflows
        if not (math.isfinite(self.interval_s) and 0 < self.interval_s <= MAX_INTERVAL_S):
            raise DriftError(f"--interval must be a number of seconds in (0, "
                             f"{MAX_INTERVAL_S:g}], got {self.interval_s}")
        if not 0 < self.alpha < 1:
            raise DriftError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.max_age_s is not None and not (math.isfinite(self.max_age_s)
                                               and self.max_age_s > 0):
            raise DriftError(f"max_age_s must be a positive number of seconds (or None: age by "
                             f"count only), got {self.max_age_s}; `drift serve --max-age S`")
        if self.min_samples < 2:
            raise DriftError(f"min_samples must be >= 2, got {self.min_samples}")
        for name, price in (("price_usd_per_hour", self.price_usd_per_hour),
                            ("price_usd_per_kwh", self.price_usd_per_kwh)):
            if price is not None and not (math.isfinite(price) and price >= 0):
                raise DriftError(f"{name} must be a finite number >= 0, got {price}")
        if self.stream_ert and not self.stream_ert > 1:
            raise DriftError(f"stream_ert must be > 1 values (or 0 for off), got {self.stream_ert}")
        if self.ingest_port is not None and not self.token and not is_loopback(self.host):
            raise DriftError(
                f"refusing to listen on {self.host} without a token: anyone who can reach it "
                "could send samples, labels and alerts. Pass --token (or BENCHWATCH_TOKEN) or "
                "bind 127.0.0.1")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation pass: per-feature figures plus what was skipped and why."""

    at: float
    features: tuple[FeatureFigures, ...]
    skipped: Mapping[tuple[str, str, str], str] = field(
        default_factory=lambda: MappingProxyType({}))

    def drifted(self) -> list[FeatureFigures]:
        return sorted((f for f in self.features if f.detected), key=lambda f: -f.score)


class DriftService:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        if not Path(config.baselines_dir).is_dir():
            raise DriftError(
                f"baselines directory {config.baselines_dir} does not exist: build one with "
                "`benchwatch baseline build ... -o DIR/NAME.json` or pass --baselines DIR")
        self.baselines: BaselineSet = load_baselines(config.baselines_dir)
        self.store = WindowStore(config.state_path, config.max_per_feature)
        # features a baseline does not know are refused (`unknown_feature`): stored, they would
        # never be evaluated and would grow the store; the baselines bound models and features
        self.collector = Collector(
            self.store, accept=self._known,
            schema=self._schema if config.require_features else None,
            features=self._schema, max_models=None, max_features=None)
        self.alerts = AlertInbox()
        # Alertmanager's bearer token, or signed requests with replay protection
        self.webhook = WebhookVerifier(config.webhook_token or config.token,
                                       config.webhook_hmac_secret)
        self.labels = LabelStore(self.store)
        self._since: dict[tuple[str, str, str, str], float] = self._load_since()
        self._lock = threading.Lock()
        self._eval_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.metrics: ServiceMetrics | None = None
        # the Kafka consumer (`collector.kafka.consumer.KafkaIngestor`) when one feeds the collector
        # (`benchwatch drift serve --kafka` sets it); its stats() are exported as metrics
        self.kafka: Any = None
        self.http: JsonHttpServer | None = None
        self.last: Evaluation | None = None
        self._failures_logged: set[tuple[str, str, str, str]] = set()
        # acknowledged episodes stay quiet until the feature clears once (then re-arm)
        self._acknowledged: set[tuple[str, str, str, str]] = set()
        self._streams: dict[tuple[str, str, str], tuple[StreamDetector, int]] = {}

    # -- what the collector asks -----------------------------------------------------------
    def _known(self, model: str, version: str) -> bool:
        return (model, version) in self.baselines.loaded

    def _schema(self, model: str, version: str) -> Sequence[str] | None:
        b = self.baselines.loaded.get((model, version))
        return None if b is None else b.feature_names

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DriftService:
        cfg = self.config
        try:
            self.metrics = ServiceMetrics(cfg.host, cfg.metrics_port, self.collector.totals,
                                          self.alerts.counts, kafka_stats=self._kafka_stats,
                                          alert_refusals=self.webhook.refused,
                                          prices=(cfg.price_usd_per_hour, cfg.price_usd_per_kwh))
            if cfg.ingest_port is not None:
                self.http = self._http_server().start()
        except Exception:
            self.stop()
            raise
        self.evaluate()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="benchwatch-drift-eval",
                                        daemon=True)
        self._thread.start()
        log.info("drift service: %d baseline(s) %s, evaluating every %gs",
                 len(self.baselines.loaded),
                 ", ".join(f"{m}/{v}" for m, v in sorted(self.baselines.loaded)), cfg.interval_s)
        return self

    def _http_server(self) -> JsonHttpServer:
        cfg = self.config
        server = JsonHttpServer(cfg.host, cfg.ingest_port or 0, cfg.token, cfg.max_body,
                                name="drift-service", options=cfg.server,
                                port_option="--ingest-port PORT (benchwatch drift serve; "
                                "ServiceConfig.ingest_port; -1 / None: no HTTP)")
        add_samples_route(server, self.collector, cfg.max_samples)
        server.add_route("POST", "/v1/labels", self.labels.receive)
        server.add_route("POST", "/v1/alerts", self.alerts.receive, verify=self.webhook)
        server.add_route("GET", "/v1/alerts", self.alerts.listing)
        server.add_route("GET", "/v1/status", lambda _: (200, self.status()))
        server.add_route("POST", "/v1/acknowledge", self._acknowledge_handler)
        return server

    def _loop(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            try:
                self.evaluate()
            except Exception:  # the evaluator must outlive any one bad pass
                log.exception("drift evaluation failed; retrying next interval")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self.store.close()

    def __enter__(self) -> DriftService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _kafka_stats(self) -> Any:
        kafka = self.kafka
        return None if kafka is None else kafka.stats()

    def sink(self) -> InProcessSink:
        """The embedded transport: `probes.configure(..., sink=service.sink())`."""
        return InProcessSink(self.collector)

    @property
    def metrics_url(self) -> str | None:
        return None if self.metrics is None else self.metrics.url

    @property
    def url(self) -> str | None:
        return None if self.http is None else self.http.url

    # -- evaluation ------------------------------------------------------------------------
    def reload_baselines(self) -> None:
        """Re-read the directory (new, changed or removed files); windows are kept."""
        fresh = load_baselines(self.config.baselines_dir, previous=self.baselines)
        with self._lock:
            self.baselines = fresh

    def evaluate(self, now: float | None = None) -> Evaluation:
        """Compare every baseline feature's window with its reference and publish."""
        with self._eval_lock:  # the loop thread, HTTP acknowledgements and callers share state
            return self._evaluate(time.time() if now is None else now)

    def _evaluate(self, now: float) -> Evaluation:
        if self.baselines.changed():
            self.reload_baselines()
        baselines = self.baselines
        figures: list[FeatureFigures] = []
        windows: dict[tuple[str, str, str], int] = {}
        skipped: dict[tuple[str, str, str], str] = {}
        estimated: dict[tuple[str, str, str], float] = {}
        realized: dict[tuple[str, str], tuple[float, int]] = {}
        realized_slices: dict[tuple[str, str, str], tuple[float, int]] = {}
        references: dict[tuple[str, str, str], tuple[int, int]] = {}
        max_age = self.config.max_age_s
        newer_than = None if max_age is None else now - max_age
        for (model, version), baseline in sorted(baselines.loaded.items()):
            current = {}
            for feature in baseline.feature_names:
                current[feature] = self.store.values(model, version, feature, newer_than)
                windows[(model, version, feature)] = len(current[feature])
            needed = min_reference_size(max(1, len(baseline.feature_names)), self.config.alpha)
            for feature in baseline.feature_names:
                references[(model, version, feature)] = (
                    reference_size(baseline.references[feature]), needed)
            comparison = self._compare(model, version, baseline, current)
            for feature, why in comparison.not_compared.items():
                skipped[(model, version, feature)] = why
            for fd in comparison.features:
                figures.append(self._figure(
                    model, version, fd.feature, fd.result.test, float(fd.result.score),
                    float(fd.result.threshold), fd.adjusted_p_value, fd.detected,
                    len(current[fd.feature]), now))
            if self.config.stream_ert:
                figures += self._stream(model, version, baseline, windows, now)
            conf = baseline.confidence_feature
            if conf is not None:
                est = estimate_accuracy(baseline, current.get(conf) or self.store.values(
                    model, version, conf, newer_than))
                if est is not None:
                    estimated[(model, version, est[1])] = est[0]
            got = self.labels.realized(model, version)
            if got is not None:
                realized[(model, version)] = got
            for slice_, pair in self.labels.realized_slices(model, version).items():
                realized_slices[(model, version, slice_)] = pair
        # drop episodes of features no longer evaluated (baseline removed, window reset)
        live = {(f.model, f.version, f.feature, f.test) for f in figures}
        for key in [k for k in self._since if k not in live]:
            del self._since[key]
        self._acknowledged &= live
        self._save_since()
        evaluation = Evaluation(now, tuple(figures), MappingProxyType(skipped))
        self.last = evaluation
        if self.metrics is not None:
            self.metrics.publish(ServiceFigures(
                features=tuple(figures), window_samples=MappingProxyType(windows),
                baseline_figures=MappingProxyType(baselines.figures()),
                estimated_accuracy=MappingProxyType(estimated),
                realized_accuracy=MappingProxyType(realized),
                realized_slice_accuracy=MappingProxyType(realized_slices),
                refused_baselines=len(baselines.refused), evaluated_at=now,
                references=MappingProxyType(references)))
        for f in evaluation.drifted():
            if f.since == now:  # a new episode: say it once; the gauges carry the rest
                log.warning("drift: %s/%s %s score=%.4g over %.4g (%s, Holm p=%s)", f.model,
                            f.version, f.feature, f.score, f.threshold, f.test,
                            "n/a" if f.p_value is None else f"{f.p_value:.3g}")
        return evaluation

    def _compare(self, model: str, version: str, baseline: ServedBaseline,
                 current: Mapping[str, Sequence[Any]]) -> FeatureComparison:
        """One model's windows against its baseline: `drift.compare_features` (Holm across the
        model's tests), the same verdict `compare_features` and `drift compare` give. A test
        that fails is logged once and skipped until it works; so is a model whose whole
        comparison raises (a bug must not stop the other models' evaluation)."""
        try:
            comparison = compare_features(
                baseline.references, current, correction="holm", alpha=self.config.alpha,
                tests=baseline.tests, min_samples=self.config.min_samples)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            comparison = FeatureComparison((), "holm", self.config.alpha,
                                           dict.fromkeys(current, why), dict.fromkeys(current, why))
        for feature, why in comparison.failed.items():
            key = (model, version, feature, why)
            if key not in self._failures_logged:
                self._failures_logged.add(key)
                log.warning("drift test failed for %s/%s %s: %s (skipped until it works)",
                            model, version, feature, why)
        return comparison

    def _figure(self, model: str, version: str, feature: str, test: str, score: float,
                threshold: float, p_value: float | None, detected: bool, n: int,
                now: float) -> FeatureFigures:
        """One feature's figures, with its episode start and acknowledgement applied."""
        key = (model, version, feature, test)
        if not detected:
            self._acknowledged.discard(key)  # cleared: the next drift fires again
        elif key in self._acknowledged:
            detected = False
        since = self._since.setdefault(key, now) if detected else None
        if not detected:
            self._since.pop(key, None)
        return FeatureFigures(model, version, feature, test, score, threshold, p_value,
                              detected, n, since)

    def _stream(self, model: str, version: str, baseline: ServedBaseline,
                windows: Mapping[tuple[str, str, str], int], now: float
                ) -> list[FeatureFigures]:
        """Feed each numeric feature's new values to its CUSUM detector (test="cusum")."""
        out = []
        for feature in baseline.feature_names:
            ref = baseline.references[feature]
            if getattr(ref, "kind", None) != "numeric":
                continue
            key = (model, version, feature)
            det, after = self._streams.get(key, (None, 0))
            if det is None:
                det = StreamDetector(ref, ert=self.config.stream_ert, k=self.config.stream_k)
            values, after = self.store.values_since(model, version, feature, after)
            state = det.update([v for v in values if isinstance(v, float)], timestamp=now)
            self._streams[key] = (det, after)
            if state.n_seen == 0:
                continue
            score = max(state.statistic, 1.0) if state.firing else state.statistic
            out.append(self._figure(model, version, feature, "cusum", score, 1.0, None,
                                    state.firing, windows.get(key, 0), now))
        return out

    def acknowledge(self, model: str, version: str, feature: str | None = None,
                    test: str | None = None) -> int:
        """Silence the matching firing features until they clear once; returns how many."""
        with self._eval_lock:
            ev = self.last
            keys = {(f.model, f.version, f.feature, f.test) for f in (ev.features if ev else ())
                    if f.detected and f.model == model and f.version == version
                    and feature in (None, f.feature) and test in (None, f.test)}
            self._acknowledged |= keys
            for m, v, f, t in keys:
                if t == "cusum" and (m, v, f) in self._streams:
                    self._streams[(m, v, f)][0].acknowledge()
        if keys:
            log.info("acknowledged drift on %s", sorted(keys))
        return len(keys)

    def _acknowledge_handler(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, Mapping) or not all(
                isinstance(payload.get(k), str) for k in ("model", "version")) or not all(
                payload.get(k) is None or isinstance(payload.get(k), str)
                for k in ("feature", "test")):
            return 400, {"error": 'send {"model": ..., "version": ..., "feature": optional, '
                                  '"test": optional} (strings)'}
        n = self.acknowledge(payload["model"], payload["version"], payload.get("feature"),
                             payload.get("test"))
        return 200, {"acknowledged": n}

    def _load_since(self) -> dict[tuple[str, str, str, str], float]:
        raw = self.store.meta_get(SINCE_KEY)
        try:
            items = json.loads(raw) if raw else []
            return {(str(m), str(v), str(f), str(t)): float(s) for m, v, f, t, s in items}
        except (ValueError, TypeError):
            log.warning("ignoring unreadable drift episode state in %s", self.config.state_path)
            return {}

    def _save_since(self) -> None:
        self.store.meta_set(SINCE_KEY, json.dumps([[*k, s] for k, s in sorted(self._since.items())]))

    def status(self) -> dict[str, Any]:
        ev = self.last
        totals = self.collector.totals()
        return {
            "baselines": [f"{m}/{v}" for m, v in sorted(self.baselines.loaded)],
            "refused_baselines": dict(self.baselines.refused),
            "ingest": totals.to_dict(),
            "evaluated_at": None if ev is None else ev.at,
            "features": [] if ev is None else [
                {"model": f.model, "model_version": f.version, "feature": f.feature,
                 "test": f.test, "score": f.score, "threshold": f.threshold,
                 "p_value": f.p_value, "detected": f.detected,
                 "window_samples": f.window_samples, "since": f.since} for f in ev.features],
            "skipped": [] if ev is None else [
                {"model": m, "model_version": v, "feature": f, "why": why}
                for (m, v, f), why in sorted(ev.skipped.items())],
            "acknowledged": [list(k) for k in sorted(self._acknowledged)],
            "alerts": len(self.alerts.alerts()),
            "pid": os.getpid(),
        }
