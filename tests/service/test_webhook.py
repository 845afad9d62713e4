"""The Alertmanager webhook: signed requests are fresh and used once (replay protection), the
refusals are counted per reason, and an alert's free-text `status` never becomes a new series."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from benchwatch import promtext
from drift.result import DriftError
from drift.service.alerts import (
    DEFAULT_WINDOW_S,
    STATUSES,
    WebhookVerifier,
    sign_webhook,
    webhook_signature,
)
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as m
from tests.service.test_service import ALERT, call
from tests.support.wait import wait_until

BODY = json.dumps(ALERT).encode()


def test_a_signed_webhook_is_accepted_once_and_only_while_fresh(baselines: Path,
                                                                start_service: Any) -> None:
    svc = start_service(baselines, token="t0k", webhook_hmac_secret="sh")
    signed = sign_webhook("sh", BODY)
    assert call(svc.url, "/v1/alerts", raw=BODY, headers=signed) == (200, {"received": 1})
    # the very same request again: a replay
    status, out = call(svc.url, "/v1/alerts", raw=BODY, headers=signed)
    assert status == 401 and "replay" in out["error"]
    # correctly signed, but outside the window either way
    for skew in (-DEFAULT_WINDOW_S - 60, DEFAULT_WINDOW_S + 60):
        old = sign_webhook("sh", BODY, time.time() + skew)
        status, out = call(svc.url, "/v1/alerts", raw=BODY, headers=old)
        assert status == 401 and "within" in out["error"], skew
    # a captured old request re-dated: the timestamp is signed, so the signature breaks
    redated = {**sign_webhook("sh", BODY, time.time() - 3600),
               "X-Benchwatch-Timestamp": str(int(time.time()))}
    assert call(svc.url, "/v1/alerts", raw=BODY, headers=redated)[0] == 401
    # the body-only signature of earlier versions carries no timestamp: refused
    body_only = {"X-Benchwatch-Signature": webhook_signature("sh", "", BODY)}
    assert call(svc.url, "/v1/alerts", raw=BODY, headers=body_only)[0] == 401
    assert call(svc.url, "/v1/alerts", raw=BODY)[0] == 401  # nothing at all
    # Alertmanager's bearer token is unaffected
    assert call(svc.url, "/v1/alerts", raw=BODY, headers={"Authorization": "Bearer t0k"})[0] == 200

    assert len(svc.alerts.alerts()) == 2
    assert svc.webhook.refused() == {"replayed": 1, "stale": 2, "bad_signature": 1,
                                     "no_timestamp": 1, "unauthorized": 1}
    scrape = promtext.read(svc.metrics_url)
    assert scrape.values(m.ALERTS_REFUSED, reason="replayed") == [1.0]
    assert scrape.values(m.ALERTS_REFUSED, reason="stale") == [2.0]


def test_the_replay_cache_is_bounded_without_reopening_a_replay() -> None:
    now = [1_700_000_000.0]
    verify = WebhookVerifier(None, "sh", window_s=300, max_remembered=2, clock=lambda: now[0])
    requests = []
    for i in range(3):  # three distinct signed requests, a second apart
        body = json.dumps({"alerts": [], "n": i}).encode()
        headers = {k.lower(): v for k, v in sign_webhook("sh", body, now[0]).items()}
        requests.append((headers, body))
        assert verify(headers, body) is None
        now[0] += 1
    assert len(verify._seen) == 2  # the first was dropped from the cache ...
    for headers, body in requests:  # ... and still cannot be replayed, nor can the others
        assert verify(headers, body) is not None
    assert verify.refused() == {"stale": 1, "replayed": 2}
    # once the window has passed, the cache empties itself
    now[0] += 400
    verify(*requests[0])
    assert len(verify._seen) == 0


def test_unsigned_loopback_webhook_stays_open_without_a_token(baselines: Path,
                                                              start_service: Any) -> None:
    # Alertmanager on the same host, no token configured: the documented loopback setup
    svc = start_service(baselines)
    assert call(svc.url, "/v1/alerts", raw=BODY) == (200, {"received": 1})
    assert svc.webhook.refused() == {}


def test_free_text_status_maps_to_three_series(baselines: Path, start_service: Any) -> None:
    svc = start_service(baselines)
    alerts = [{**ALERT["alerts"][0], "status": f"weird-{i}"} for i in range(2000)]
    alerts += [{**ALERT["alerts"][0], "status": "RESOLVED"}]
    for start in range(0, len(alerts), 1000):  # the inbox reads at most 1000 per notification
        status, _ = call(svc.url, "/v1/alerts", {"alerts": alerts[start:start + 1000]})
        assert status == 200
    assert svc.alerts.counts() == {"other": 2000, "resolved": 1}
    assert {a.status for a in svc.alerts.alerts()} <= set(STATUSES)
    series = promtext.read(svc.metrics_url).values(m.ALERTS_RECEIVED)
    assert sorted(series) == [1.0, 2000.0]  # two series, not 2001


@pytest.mark.parametrize("interval", [float("nan"), float("inf"), 1e300, -1.0, 0.0])
def test_a_bad_interval_is_refused_before_the_evaluator_starts(baselines: Path,
                                                               interval: float) -> None:
    with pytest.raises(DriftError, match="--interval must be"):
        ServiceConfig(baselines, interval_s=interval)


def test_the_evaluator_keeps_running_on_a_short_interval(baselines: Path,
                                                       start_service: Any) -> None:
    svc: DriftService = start_service(baselines, interval_s=0.05)
    assert svc.last is not None
    first = svc.last.at
    wait_until(lambda: svc.last is not None and svc.last.at > first, 30, "a second evaluation")
    assert svc._thread is not None and svc._thread.is_alive()
