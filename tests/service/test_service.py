"""The drift service: baselines in, windows evaluated, metrics out, labels and alerts in."""

from __future__ import annotations

import http.client
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchwatch import promtext
from drift import DriftError
from drift.service.alerts import sign_webhook
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as m
from tests.service.conftest import build_baseline, samples


def call(url: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request("GET" if data is None else "POST", path, data,
                     {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_serves_the_good_baselines_and_refuses_bad_ones(tmp_path: Path,
                                                        start_service: Any) -> None:
    d = tmp_path / "b"
    d.mkdir()
    build_baseline(d)
    build_baseline(d, model="other", version="v1", seed=5)
    (d / "corrupt.json").write_text('{"format": "benchwatch-baseline", "schema_ver')
    manifest = json.loads((d / "other-v1.json").read_text())
    (d / "future.json").write_text(json.dumps({**manifest, "schema_version": 99}))
    # another model's arrays under this model's manifest: refused by the arrays' hash
    shutil.copy(d / "digits-v3.npz", d / "other-v1.npz")
    svc = start_service(d)
    status = svc.status()
    assert status["baselines"] == ["digits/v3"]
    refused = status["refused_baselines"]
    assert set(map(lambda p: Path(p).name, refused)) == {"corrupt.json", "future.json",
                                                         "other-v1.json"}
    assert all(why for why in refused.values())
    assert promtext.read(svc.metrics_url).values(m.BASELINE_REFUSED) == [3.0]
    report = svc.collector.ingest([*samples(5), *samples(3, model="other", version="v1")])
    assert report.accepted == 5 and report.rejected == {"unknown_model": 3}


def test_a_missing_baselines_directory_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(DriftError, match="does not exist"):
        DriftService(ServiceConfig(tmp_path / "nope", metrics_port=0, ingest_port=0))


def test_refuses_to_serve_beyond_loopback_without_a_token(baselines: Path) -> None:
    with pytest.raises(DriftError, match="without a token"):
        ServiceConfig(baselines, host="0.0.0.0", metrics_port=0, ingest_port=0)


def test_no_drift_on_the_baseline_distribution_drift_on_a_shift(baselines: Path,
                                                                 start_service: Any) -> None:
    svc = start_service(baselines)
    sink = svc.sink()
    sink.send(samples(1000, seed=7))
    clean = svc.evaluate(now=1000.0)
    assert {f.feature for f in clean.features} == {"confidence", "predicted_class"}
    assert not clean.drifted(), clean
    svc.store.reset()
    sink.send(samples(1000, shift=True, seed=8, prefix="d"))
    ev = svc.evaluate(now=2000.0)
    top = ev.drifted()[0]
    assert (top.feature, top.test, top.since) == ("confidence", "wasserstein", 2000.0)
    assert top.score > top.threshold and top.p_value is not None and top.p_value < 0.05
    assert svc.evaluate(now=2500.0).drifted()[0].since == 2000.0  # the episode's start stays
    s = promtext.read(svc.metrics_url)
    labels = {"model": "digits", "model_version": "v3", "feature": "confidence",
              "test": "wasserstein"}
    assert s.values(m.DRIFT_DETECTED, **labels) == [1.0]
    assert s.values(m.DRIFT_SCORE, **labels) == [pytest.approx(top.score)]
    assert s.values(m.DRIFT_THRESHOLD, **labels) == [top.threshold]
    assert s.values(m.DRIFT_SINCE, **labels) == [2000.0]
    assert s.values(m.DRIFT_WINDOW, feature="confidence") == [1000.0]
    assert s.values(m.BASELINE_FIGURE, figure="latency_p99_s") == [0.02]
    assert s.values(m.INGEST, outcome="accepted") == [2000.0]
    assert s.values(m.DRIFT_EVALUATED) == [2500.0]
    # estimated accuracy through the baseline's calibration (CBPE) falls with confidence
    est = s.values(m.ACCURACY_ESTIMATED, method="cbpe")
    assert len(est) == 1 and 0.3 < est[0] < 0.9


def test_small_windows_are_not_tested_and_say_why(baselines: Path, start_service: Any) -> None:
    svc = start_service(baselines, min_samples=100)
    svc.sink().send(samples(20))
    ev = svc.evaluate()
    assert ev.features == ()
    assert "testing from 100" in ev.skipped[("digits", "v3", "confidence")]


def test_all_missing_values_raise_the_missing_rate_test_not_a_crash(
        baselines: Path, start_service: Any) -> None:
    from probes.samples import Sample

    svc = start_service(baselines, min_samples=2)
    svc.sink().send([Sample("digits", "v3", f"n{i}", 1.0,
                            {"confidence": None, "predicted_class": str(i % 10)})
                     for i in range(200)])
    ev = svc.evaluate()
    assert "non-missing" in ev.skipped[("digits", "v3", "confidence")]
    # the distribution cannot be tested, but the missing rate can: 100% against 0%
    assert [(f.feature, f.test, f.detected) for f in ev.features] == [
        ("confidence", "missing", True), ("predicted_class", "js", False)]


def test_windows_and_episodes_survive_a_clean_restart(baselines: Path, tmp_path: Path,
                                                      start_service: Any) -> None:
    state = tmp_path / "state.sqlite"
    svc = start_service(baselines, state_path=state)
    svc.sink().send(samples(400, shift=True))
    assert svc.evaluate(now=100.0).drifted()
    svc.stop()
    again = start_service(baselines, state_path=state)
    assert again.store.count("digits", "v3", "confidence") == 400
    assert again.evaluate(now=200.0).drifted()[0].since == 100.0
    assert again.collector.ingest(samples(400, shift=True)).duplicates == 400


def test_delayed_labels_give_realized_accuracy(baselines: Path, start_service: Any) -> None:
    svc = start_service(baselines)
    batch = samples(100)
    svc.sink().send(batch)
    labels = [{"sample_id": s.sample_id,
               "label": s.outputs["predicted_class"] if i % 4 else "wrong"}
              for i, s in enumerate(batch)]
    labels += [{"sample_id": "never-seen", "label": "1"}, {"sample_id": 5, "label": "1"}]
    status, out = call(svc.url, "/v1/labels", {"labels": labels})
    assert status == 200
    assert out == {"matched": 100, "unknown_sample": 1, "duplicates": 0,
                   "rejected": {"wrong_type": 1}}
    assert call(svc.url, "/v1/labels", {"labels": labels[:10]})[1]["duplicates"] == 10
    assert call(svc.url, "/v1/labels", {"nope": 1})[0] == 400
    svc.evaluate()
    s = promtext.read(svc.metrics_url)
    assert s.values(m.ACCURACY_REALIZED, model="digits") == [0.75]
    assert s.values(m.ACCURACY_LABELS, model="digits") == [100.0]


ALERT = {"version": "4", "status": "firing", "receiver": "benchwatch-webhook",
         "alerts": [{"status": "firing", "startsAt": "2026-01-01T00:00:00Z",
                     "labels": {"alertname": "BenchwatchFeatureDrift", "model": "digits",
                                "model_version": "v3", "feature": "confidence"},
                     "annotations": {"summary": "drifted", "score": "1.2"}}]}


def test_alert_webhook_verifies_bearer_or_hmac_and_keeps_alerts(baselines: Path,
                                                                start_service: Any) -> None:
    svc = start_service(baselines, token="t0k", webhook_hmac_secret="sh")
    body = json.dumps(ALERT).encode()
    assert call(svc.url, "/v1/alerts", raw=body)[0] == 401
    assert call(svc.url, "/v1/alerts", raw=body, headers={"Authorization": "Bearer no"})[0] == 401
    bad_sig = {"X-Benchwatch-Signature": "sha256=" + "0" * 64}
    assert call(svc.url, "/v1/alerts", raw=body, headers=bad_sig)[0] == 401
    assert call(svc.url, "/v1/alerts", raw=body,
                headers={"Authorization": "Bearer t0k"}) == (200, {"received": 1})
    assert call(svc.url, "/v1/alerts", raw=body, headers=sign_webhook("sh", body))[0] == 200
    assert call(svc.url, "/v1/alerts", {"alerts": "x"}, {"Authorization": "Bearer t0k"})[0] == 400
    got = svc.alerts.alerts()
    assert len(got) == 2 and got[0].labels["feature"] == "confidence"
    assert "confidence" in got[0].summary and got[0].annotations["score"] == "1.2"
    status, listing = call(svc.url, "/v1/alerts", headers={"Authorization": "Bearer t0k"})
    assert status == 200 and len(listing["alerts"]) == 2
    # samples need the token too
    assert call(svc.url, "/v1/samples", {"samples": []})[0] == 401
    assert promtext.read(svc.metrics_url).values(m.ALERTS_RECEIVED, status="firing") == [2.0]


def test_a_baseline_added_later_is_picked_up(tmp_path: Path, start_service: Any) -> None:
    d = tmp_path / "b"
    d.mkdir()
    build_baseline(d)
    svc = start_service(d)
    assert svc.collector.ingest(samples(3, model="late", version="v1")).rejected
    build_baseline(d, model="late", version="v1")
    svc.evaluate()
    assert svc.collector.ingest(samples(3, model="late", version="v1")).accepted == 3


def test_status_endpoint(baselines: Path, start_service: Any) -> None:
    svc = start_service(baselines)
    status, out = call(svc.url, "/v1/status")
    assert status == 200 and out["baselines"] == ["digits/v3"]
    assert re.match(r"\d+", str(out["pid"]))


def test_acknowledged_drift_stays_quiet_until_it_clears(baselines: Path,
                                                       start_service: Any) -> None:
    svc = start_service(baselines, token="t")
    svc.sink().send(samples(500, shift=True))
    assert [f.feature for f in svc.evaluate(now=1.0).drifted()] == ["confidence"]
    assert call(svc.url, "/v1/acknowledge", {"model": "digits"},
                {"Authorization": "Bearer t"})[0] == 400
    assert call(svc.url, "/v1/acknowledge", {"model": "digits", "version": "v3"},
                {"Authorization": "Bearer t"}) == (200, {"acknowledged": 1})
    assert not svc.evaluate(now=2.0).drifted()
    svc.store.reset()
    svc.sink().send(samples(500, seed=3, prefix="ok"))
    assert not svc.evaluate(now=3.0).drifted()  # cleared: the acknowledgement is used up
    svc.sink().send(samples(5000, shift=True, seed=4, prefix="again"))
    again = svc.evaluate(now=4.0).drifted()
    assert [(f.feature, f.since) for f in again] == [("confidence", 4.0)]


def test_streaming_cusum_latches_on_a_shift(baselines: Path, start_service: Any) -> None:
    svc = start_service(baselines, stream_ert=1e6)
    svc.sink().send(samples(2000, seed=11))
    quiet = [f for f in svc.evaluate(now=1.0).features if f.test == "cusum"]
    assert [(f.feature, f.detected) for f in quiet] == [("confidence", False)]
    assert quiet[0].score < 1.0 and quiet[0].threshold == 1.0
    svc.sink().send(samples(300, shift=True, seed=12, prefix="d"))
    fired = [f for f in svc.evaluate(now=2.0).features if f.test == "cusum"]
    assert fired[0].detected and fired[0].since == 2.0 and fired[0].score >= 1.0
    # latched: a few clean values later it still fires
    svc.sink().send(samples(50, seed=13, prefix="c"))
    assert [f for f in svc.evaluate(now=3.0).features if f.test == "cusum"][0].detected
    assert svc.acknowledge("digits", "v3", "confidence", "cusum") == 1
    assert not [f for f in svc.evaluate(now=4.0).features if f.test == "cusum"][0].detected


def test_alert_listeners_see_new_alerts_and_cannot_break_delivery(baselines: Path,
                                                                 start_service: Any) -> None:
    svc = start_service(baselines)
    seen: list[Any] = []

    def broken(alerts: Any) -> None:
        raise RuntimeError("grafana down")

    svc.alerts.subscribe(broken)
    svc.alerts.subscribe(seen.extend)
    assert call(svc.url, "/v1/alerts", ALERT) == (200, {"received": 1})
    assert [a.labels["feature"] for a in seen] == ["confidence"]


def test_realized_accuracy_survives_a_restart(baselines: Path, tmp_path: Path,
                                              start_service: Any) -> None:
    state = tmp_path / "s.sqlite"
    svc = start_service(baselines, state_path=state)
    batch = samples(40)
    svc.sink().send(batch)
    labels = [{"sample_id": s.sample_id, "label": s.outputs["predicted_class"]} for s in batch]
    assert svc.labels.receive({"labels": labels})[1]["matched"] == 40
    svc.stop()
    again = start_service(baselines, state_path=state)
    assert again.labels.realized("digits", "v3") == (1.0, 40)
