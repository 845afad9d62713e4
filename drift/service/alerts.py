"""The Alertmanager webhook receiver: verifies, logs and keeps the notifications it gets.

Alertmanager posts `{"version": "4", "status": ..., "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "fingerprint", ...}], ...}`. The inbox keeps the last
`max_alerts` alerts (bounded; `reset()` empties it) so the demo and tests can show them.
Verification (bearer token or HMAC of the body) happens in the HTTP layer before this runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

MAX_LABELS = 64
MAX_TEXT = 2048


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert out of a webhook notification, as received."""

    received_at: float
    status: str  # firing | resolved
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
            status = str(raw.get("status") or payload.get("status") or "firing")[:16]
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
