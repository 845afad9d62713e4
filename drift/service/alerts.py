"""The Alertmanager webhook receiver: verifies, logs and keeps the notifications it gets.

Alertmanager posts `{"version": "4", "status": ..., "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "fingerprint", ...}], ...}`. The inbox keeps the last
`max_alerts` alerts (bounded; `reset()` empties it) so the demo and tests can show them.
An alert's `status` is one of `STATUSES` (anything else is `other`): it becomes a metric
label, and free text there would make a new series per value.

`WebhookVerifier` runs in the HTTP layer before the inbox: Alertmanager's bearer token, or a
signed request (`sign_webhook`): `X-Benchwatch-Timestamp: <unix seconds>` and
`X-Benchwatch-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`. The timestamp is
inside the signed material, so a captured request cannot be re-dated; one older or newer than
`window_s`, or one already seen (bounded replay cache), is refused (401) and counted per reason.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

MAX_LABELS = 64
MAX_TEXT = 2048
# the only values `status` takes (Alertmanager sends firing or resolved): a metric label
STATUSES = ("firing", "resolved", "other")

TIMESTAMP_HEADER = "x-benchwatch-timestamp"
SIGNATURE_HEADER = "x-benchwatch-signature"
DEFAULT_WINDOW_S = 300.0  # a signed request older or newer than this is refused
DEFAULT_REPLAY_CACHE = 10_000  # signatures remembered (bounded; see WebhookVerifier)
# why a webhook request was refused: the label of benchwatch_alerts_refused_total
REFUSALS = ("unauthorized", "bad_signature", "no_timestamp", "stale", "replayed")


def alert_status(raw: Any) -> str:
    """`firing`, `resolved` or `other`: never the sender's free text."""
    text = str(raw).strip().lower() if raw is not None else "firing"
    return text if text in STATUSES else "other"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign_webhook(secret: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """The headers that sign `body` for `POST /v1/alerts` (now, unless `timestamp` is given)."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    return {"X-Benchwatch-Timestamp": ts,
            "X-Benchwatch-Signature": webhook_signature(secret, ts, body)}


class WebhookVerifier:
    """Accepts `POST /v1/alerts` with the bearer token, or signed within `window_s` and not
    seen before; with neither a token nor a secret configured, every request (the service
    then listens on loopback only: `ServiceConfig` refuses anything else without a token).

    Replay cache: each accepted signature is kept until it leaves the window; when
    `max_remembered` are kept, the oldest is dropped and no request signed at or before its
    time is accepted any more, so the bound never reopens a replay.
    Called as a `collector.http_server.Verifier`: `(headers, body) -> None | problem`."""

    def __init__(self, token: str | None, secret: str | None,
                 window_s: float = DEFAULT_WINDOW_S,
                 max_remembered: int = DEFAULT_REPLAY_CACHE,
                 clock: Callable[[], float] = time.time) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        self._token = token or None
        self._secret = secret or None
        self.window_s = window_s
        self._max = max(1, max_remembered)
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> its timestamp
        self._floor = -math.inf  # signed at or before this: refused (evicted from the cache)
        self._refused: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, headers: Mapping[str, str], body: bytes) -> str | None:
        if self._token is None and self._secret is None:
            return None
        if self._token is not None:
            scheme, _, value = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                    value.strip().encode(), self._token.encode()):
                return None
        sig = headers.get(SIGNATURE_HEADER, "")
        if self._secret is None or not sig:
            return self._refuse("unauthorized", "unverified request: send 'Authorization: "
                                "Bearer <token>' or a signed request (X-Benchwatch-Timestamp "
                                "and X-Benchwatch-Signature, see docs/deploy.md)")
        ts_text = headers.get(TIMESTAMP_HEADER, "").strip()
        try:
            ts = float(ts_text)
        except ValueError:
            ts = math.nan
        if not math.isfinite(ts):
            return self._refuse("no_timestamp", "signed request without a valid "
                                "X-Benchwatch-Timestamp (unix seconds, signed with the body)")
        if not hmac.compare_digest(sig.encode(),
                                   webhook_signature(self._secret, ts_text, body).encode()):
            return self._refuse("bad_signature", "wrong signature: sign '<timestamp>.' + body "
                                "with HMAC-SHA256 and the shared secret")
        now = self._clock()
        with self._lock:
            self._forget(now)
            if abs(now - ts) > self.window_s or ts <= self._floor:
                return self._refuse_locked("stale", f"signed request timestamp {ts_text} is not "
                                           f"within {self.window_s:g} s of now: re-sign it")
            if sig in self._seen:
                return self._refuse_locked("replayed", "this signed request was already "
                                           "received (replay): sign each request anew")
            self._seen[sig] = ts
            if len(self._seen) > self._max:
                _, dropped = self._seen.popitem(last=False)
                self._floor = max(self._floor, dropped)
        return None

    def _forget(self, now: float) -> None:
        """Drop signatures that left the window (they would be refused as stale anyway)."""
        while self._seen:
            sig, ts = next(iter(self._seen.items()))
            if ts >= now - self.window_s:
                break
            del self._seen[sig]

    def _refuse(self, reason: str, message: str) -> str:
        with self._lock:
            return self._refuse_locked(reason, message)

    def _refuse_locked(self, reason: str, message: str) -> str:
        self._refused[reason] += 1
        return message

    def refused(self) -> dict[str, int]:
        """Refused requests per reason (`REFUSALS`), since start."""
        with self._lock:
            return dict(self._refused)


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert out of a webhook notification, as received."""

    received_at: float
    status: str  # one of STATUSES
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    starts_at: str = ""
    fingerprint: str = ""

    @property
    def summary(self) -> str:
        text = self.annotations.get("summary") or self.annotations.get("description")
        where = " ".join(f"{k}={self.labels[k]}" for k in ("model", "model_version", "feature")
                         if k in self.labels)
        return f"{self.name} [{self.status}] {where}: {text or ''}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {"received_at": self.received_at, "status": self.status, "name": self.name,
                "labels": dict(self.labels), "annotations": dict(self.annotations),
                "starts_at": self.starts_at, "fingerprint": self.fingerprint}


def _str_map(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k)[:128]: str(v)[:MAX_TEXT] for k, v in list(raw.items())[:MAX_LABELS]}


Listener = Callable[[Sequence[ReceivedAlert]], None]


class AlertInbox:
    def __init__(self, max_alerts: int = 1000) -> None:
        self._alerts: deque[ReceivedAlert] = deque(maxlen=max_alerts)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(new_alerts)` after each notification (e.g. Grafana annotations).
        It runs on the webhook's thread: keep it quick; its exceptions are logged, not raised."""
        self._listeners.append(listener)

    add_listener = subscribe  # the name benchwatch.grafana.annotations' wiring uses

    def receive(self, payload: Any) -> tuple[int, Any]:
        """The `POST /v1/alerts` handler (payload already parsed from JSON)."""
        if not isinstance(payload, Mapping) or not isinstance(payload.get("alerts"), list):
            return 400, {"error": 'expected an Alertmanager webhook payload: {"alerts": [...]}'}
        now = time.time()
        got = []
        for raw in payload["alerts"][:1000]:
            if not isinstance(raw, Mapping):
                continue
            labels = _str_map(raw.get("labels"))
            status = alert_status(raw.get("status") or payload.get("status") or "firing")
            got.append(ReceivedAlert(
                received_at=now, status=status, name=labels.get("alertname", ""),
                labels=MappingProxyType(labels),
                annotations=MappingProxyType(_str_map(raw.get("annotations"))),
                starts_at=str(raw.get("startsAt", ""))[:64],
                fingerprint=str(raw.get("fingerprint", ""))[:64]))
        with self._lock:
            self._alerts.extend(got)
            self._counts.update(a.status for a in got)
        for a in got:
            log.warning("alert received: %s (since %s)", a.summary, a.starts_at or "?")
        for listener in list(self._listeners):
            try:
                listener(got)
            except Exception:  # a broken listener must not fail Alertmanager's delivery
                log.exception("alert listener %r failed", listener)
        return 200, {"received": len(got)}

    def listing(self, _: Any = None) -> tuple[int, Any]:
        """The `GET /v1/alerts` handler: the kept alerts, newest last."""
        return 200, {"alerts": [a.to_dict() for a in self.alerts()]}

    def alerts(self) -> list[ReceivedAlert]:
        with self._lock:
            return list(self._alerts)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._alerts.clear()
            self._counts.clear()
