"""Post and close Grafana annotations (grafana-client) for drift alerts and canary verdicts.

The drift service opens a region annotation when an alert starts and closes it when the alert
ends; the replay posts a point annotation with its verdict. Grafana being down or refusing the
token must never stop those services: every call logs (once per kind of failure) and returns
None/False instead of raising.

    ann = GrafanaAnnotations.from_env()          # None unless GRAFANA_URL is set
    if ann:
        ann.start("digits/v3/confidence", "drift on confidence: score 0.31 > 0.10",
                  tags=("drift", "model:digits"))
        ...
        ann.end("digits/v3/confidence")
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchwatch.errors import UsageError
from probes.errors import require

log = logging.getLogger(__name__)

__all__ = ["AnnotationConfig", "GrafanaAnnotations", "BASE_TAG"]

BASE_TAG = "benchwatch"  # the dashboards' annotation query shows annotations with this tag
MAX_OPEN = 1000  # bounded: open regions remembered for end()
MAX_PENDING = 1000  # bounded: alerts waiting for the background worker


@dataclass(frozen=True)
class AnnotationConfig:
    url: str
    token: str | None = None
    dashboard_uid: str | None = None  # None: organisation-wide, shown on every benchwatch board
    timeout_s: float = 5.0

    @classmethod
    def from_env(cls) -> AnnotationConfig | None:
        """GRAFANA_URL (required), GRAFANA_TOKEN, GRAFANA_DASHBOARD_UID; None without a URL."""
        url = os.environ.get("GRAFANA_URL", "").strip()
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"GRAFANA_URL={url!r} is not an http(s) URL; set it to e.g. "
                             "http://127.0.0.1:3000 or unset it to disable annotations")
        return cls(url=url, token=os.environ.get("GRAFANA_TOKEN") or None,
                   dashboard_uid=os.environ.get("GRAFANA_DASHBOARD_UID") or None)


def _ms(t: float | None) -> int:
    return int((time.time() if t is None else t) * 1000)


def _parse_time(text: str) -> float | None:
    """Alertmanager's RFC 3339 times (nanosecond fractions included); None when unreadable."""
    if not text or text.startswith("0001-"):
        return None
    try:
        head, _, frac = text.rstrip("Z").partition(".")
        tz = "+00:00"
        for sign in ("+", "-"):
            if sign in frac:
                frac, _, rest = frac.partition(sign)
                tz = sign + rest
        if len(head) > 19:  # offset without a fraction
            head, tz = head[:19], head[19:]
        base = datetime.fromisoformat(head + tz)
        return base.timestamp() + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None


class GrafanaAnnotations:
    """Region annotations keyed by the caller (e.g. an alert fingerprint), and point events."""

    def __init__(self, config: AnnotationConfig, client: Any | None = None) -> None:
        self.config = config
        if client is None:
            require("grafana_client", "grafana", "Grafana annotations")
            from grafana_client.api import GrafanaApi

            client = GrafanaApi.from_url(config.url, credential=config.token,
                                         timeout=config.timeout_s)
        self._api = client
        self._open: OrderedDict[str, int] = OrderedDict()
        self._failures: set[str] = set()
        self.errors = 0
        self.dropped = 0
        self._pending: queue.Queue[Any] = queue.Queue(maxsize=MAX_PENDING)
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> GrafanaAnnotations | None:
        cfg = AnnotationConfig.from_env()
        return cls(cfg) if cfg else None

    def _tags(self, tags: Sequence[str]) -> list[str]:
        return [BASE_TAG, *(t for t in tags if t != BASE_TAG)]

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        kind = f"{what}:{type(exc).__name__}"
        if kind not in self._failures:  # log each kind of failure once, count all
            self._failures.add(kind)
            log.warning("grafana annotation %s failed at %s: %s (further failures of this "
                        "kind are counted, not logged)", what, self.config.url, exc)

    def post(self, text: str, tags: Sequence[str] = (), at: float | None = None,
             end: float | None = None) -> int | None:
        """A point (or, with `end`, region) annotation; returns its id or None on failure."""
        try:
            resp = self._api.annotations.add_annotation(
                dashboard_uid=self.config.dashboard_uid, time_from=_ms(at),
                time_to=_ms(end) if end is not None else None, tags=self._tags(tags),
                text=text)
            return int(resp["id"])
        except Exception as exc:  # noqa: BLE001 (Grafana trouble must not stop the caller)
            self._failed("post", exc)
            return None

    def start(self, key: str, text: str, tags: Sequence[str] = (),
              at: float | None = None) -> int | None:
        """Open a region for `key` (idempotent: a second start for an open key is a no-op)."""
        if key in self._open:
            return self._open[key]
        ann_id = self.post(text, tags, at=at)
        if ann_id is not None:
            self._open[key] = ann_id
            while len(self._open) > MAX_OPEN:
                self._open.popitem(last=False)
        return ann_id

    def end(self, key: str, at: float | None = None, text: str | None = None) -> bool:
        """Close the region opened for `key`; False when none is open or Grafana failed."""
        ann_id = self._open.pop(key, None)
        if ann_id is None:
            return False
        try:
            payload: dict[str, Any] = {"timeEnd": _ms(at)}
            if text is not None:
                payload["text"] = text
            # PATCH keeps the start time and tags; grafana-client's helper would send nulls
            self._api.client.PATCH(f"/annotations/{ann_id}", json=payload)
            return True
        except Exception as exc:  # noqa: BLE001
            self._failed("end", exc)
            return False

    def on_alerts(self, alerts: Iterable[Any]) -> None:
        """Alertmanager webhook alerts (objects with `status`, `name`, `labels`, `annotations`,
        `fingerprint`, `starts_at`, e.g. `drift.service.alerts.ReceivedAlert`): a firing alert
        opens a region at its start, a resolved one closes it.

        Returns at once: the Grafana calls run on a background thread (the webhook must answer
        Alertmanager quickly even when Grafana is slow); past `MAX_PENDING` queued alerts,
        further ones are dropped and counted in `dropped`."""
        for a in alerts:
            try:
                self._pending.put_nowait(a)
            except queue.Full:
                self.dropped += 1
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain, daemon=True,
                                                name="benchwatch-grafana-annotations")
                self._worker.start()

    def _drain(self) -> None:
        while True:
            a = self._pending.get()
            if a is None:
                return
            try:
                self.apply_alert(a)
            except Exception as exc:  # noqa: BLE001 (never kill the worker)
                self._failed("alert", exc)
            finally:
                self._pending.task_done()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until queued alerts are applied (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._pending.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                self._pending.put(None)
                self._worker.join(timeout=10)
            self._worker = None

    def apply_alert(self, a: Any) -> None:
        """One alert, synchronously (see `on_alerts`)."""
        labels = dict(getattr(a, "labels", {}) or {})
        key = getattr(a, "fingerprint", "") or "|".join(
            f"{k}={v}" for k, v in sorted(labels.items()))
        if getattr(a, "status", "") == "resolved":
            self.end(key)
            return
        notes = dict(getattr(a, "annotations", {}) or {})
        text = notes.get("summary") or notes.get("description") or getattr(a, "name", "")
        tags = [t for t in (
            "alert", getattr(a, "name", ""),
            *(f"{k}:{labels[k]}" for k in ("model", "model_version", "feature")
              if k in labels)) if t]
        self.start(key, str(text), tags, at=_parse_time(getattr(a, "starts_at", "")))

    def open_keys(self) -> list[str]:
        return list(self._open)

    def reset(self) -> None:
        self._open.clear()
        self._failures.clear()
        self.errors = 0
        self.dropped = 0
