"""Security: loopback by default, tokens off loopback, verified webhooks.

- Every listening socket of the example model server (with its probe endpoint) and of the
  collector binds 127.0.0.1 by default (inspected with psutil). The demo's whole process tree
  is checked the same way in tests/demo, the drift service's in tests/service.
- Ingest refuses to listen beyond loopback without a token; bound on the machine's real
  (non-loopback) address with a token, a request without or with a wrong token gets 401 and
  stores nothing, the right token gets 200.
- Alertmanager webhooks into the drift service: unsigned, wrongly signed or replayed-with-a-
  changed-body payloads get 401 and are not recorded; a bearer token or a valid HMAC passes.
(Unpickling/eval of received data: test_no_unsafe_deserialization.py.)
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from benchwatch import promtext
from benchwatch.services import free_port
from collector import Collector, WindowStore
from collector.errors import CollectorConfigError
from collector.http_server import ingest_server
from drift import Baseline
from drift.service.alerts import sign_webhook
from drift.service.engine import DriftService, ServiceConfig

ROOT = Path(__file__).resolve().parents[2]


def _external_ip() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return str(a.address)
    return None


def _post(host: str, port: int, path: str, body: bytes,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(raw) if raw else None


def _listening(pid: int) -> list[tuple[str, int]]:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return [(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


def _wait_listening(pid: int, n: int, timeout_s: float = 60) -> list[tuple[str, int]]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = _listening(pid)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture
def spawn() -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "BENCHWATCH_TOKEN": ""})
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def test_example_server_and_probe_endpoint_bind_loopback(spawn: Any) -> None:
    proc = spawn("-m", "benchwatch.example.server", "--port", "0",
                 "--metrics-port", str(free_port()))
    listening = _wait_listening(proc.pid, 2)
    assert len(listening) == 2, f"expected the model and metrics ports, got {listening}"
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_collector_serve_binds_loopback(spawn: Any, tmp_path: Path) -> None:
    proc = spawn("-m", "benchwatch", "collector", "serve", "--state", str(tmp_path / "c.sqlite"),
                 "--port", str(free_port()), "--model", "digits/v3")
    listening = _wait_listening(proc.pid, 1)
    assert listening and {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_ingest_refuses_off_loopback_without_token(tmp_path: Path) -> None:
    store = WindowStore(tmp_path / "s.sqlite")
    with pytest.raises(CollectorConfigError, match="token"):
        ingest_server(Collector(store), host="0.0.0.0", port=0)
    ip = _external_ip()
    if ip:
        with pytest.raises(CollectorConfigError, match="token"):
            ingest_server(Collector(store), host=ip, port=0)
    store.close()


def _sample() -> dict[str, Any]:
    return {"model": "digits", "version": "v3", "sample_id": uuid.uuid4().hex,
            "timestamp": 1.7e9, "outputs": {"confidence": 0.9}}


def test_ingest_off_loopback_requires_the_token(tmp_path: Path) -> None:
    ip = _external_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to bind")
    store = WindowStore(tmp_path / "s.sqlite")
    server = ingest_server(Collector(store), host=ip, port=0, token="s3cret-token").start()
    try:
        body = json.dumps({"samples": [_sample()]}).encode()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"},
                        {"Authorization": "Basic czNjcmV0LXRva2Vu"}):
            status, payload = _post(ip, server.port, "/v1/samples", body, headers)
            assert status == 401 and "token" in payload["error"], (headers, status, payload)
        assert store.sample_count() == 0, "an unauthenticated batch was stored"
        status, payload = _post(ip, server.port, "/v1/samples", body,
                                {"Authorization": "Bearer s3cret-token"})
        assert status == 200 and payload["accepted"] == 1
        assert store.sample_count() == 1
    finally:
        server.stop()
        store.close()


ALERT = {"version": "4", "status": "firing", "receiver": "benchwatch", "alerts": [{
    "status": "firing", "labels": {"alertname": "BenchwatchFeatureDrift", "model": "digits",
                                   "model_version": "v3", "feature": "confidence"},
    "annotations": {"summary": "drifted"}, "startsAt": "2026-01-01T00:00:00Z",
    "fingerprint": "abc"}]}


@pytest.fixture
def drift_service(tmp_path: Path) -> Iterator[DriftService]:
    d = tmp_path / "baselines"
    d.mkdir()
    rng = np.random.default_rng(0)
    Baseline.build("digits", "v3", {"confidence": rng.beta(8, 1, 1000)}, {},
                   source="test").save(d / "digits-v3.json")
    svc = DriftService(ServiceConfig(d, metrics_port=0, ingest_port=0, interval_s=3600,
                                     webhook_token="hook-token",
                                     webhook_hmac_secret="hook-secret")).start()
    yield svc
    svc.stop()


def test_webhook_payloads_are_verified(drift_service: DriftService) -> None:
    assert drift_service.http is not None
    port = drift_service.http.port
    body = json.dumps(ALERT).encode()
    forged = json.dumps({**ALERT, "status": "resolved"}).encode()
    refused = [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"X-Benchwatch-Signature": "sha256=" + "0" * 64},
        sign_webhook("another-secret", body),
        sign_webhook("hook-secret", forged),  # body changed
        {"X-Benchwatch-Signature": "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()},  # no timestamp
    ]
    for headers in refused:
        status, payload = _post("127.0.0.1", port, "/v1/alerts", body, headers)
        assert status == 401 and payload["error"], (headers, status)
    assert drift_service.alerts.alerts() == [], "an unverified notification was recorded"

    status, _ = _post("127.0.0.1", port, "/v1/alerts", body, {"Authorization": "Bearer hook-token"})
    assert status == 200
    status, _ = _post("127.0.0.1", port, "/v1/alerts", body,
                      sign_webhook("hook-secret", body))
    assert status == 200
    got = drift_service.alerts.alerts()
    assert len(got) == 2 and all(a.name == "BenchwatchFeatureDrift" for a in got)
    assert got[0].labels["feature"] == "confidence"


def test_metrics_endpoints_do_not_leak_tokens(drift_service: DriftService) -> None:
    assert drift_service.metrics_url is not None
    url = drift_service.metrics_url
    url = url if url.endswith("/metrics") else url + "/metrics"
    text = promtext.fetch(url, timeout_s=5)
    assert "hook-token" not in text and "hook-secret" not in text
