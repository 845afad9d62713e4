"""Drift alerts become Grafana annotation regions: real Alertmanager → the real
`benchwatch drift serve` (its webhook, with GRAFANA_URL set) → grafana-client → Grafana.

Grafana itself is the recording FAKE of test_grafana_api.py (no Grafana server can be installed
here); with GRAFANA_URL pointing at a real one, test_grafana_api's real-Grafana tests cover the
annotation calls themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from benchwatch import services
from tests.support.grafana_fake import RecordingGrafana
from tests.support.grafana_stack import write_baselines
from tests.support.wait import wait_until

pytestmark = pytest.mark.prometheus
TOKEN = "webhook-test-token"


@pytest.fixture
def drift_cli(tmp_path: Path, fake_grafana: RecordingGrafana) -> Iterator[str]:
    (tmp_path / "baselines").mkdir()
    write_baselines(tmp_path / "baselines", np.random.default_rng(3))
    port, ingest = services.free_port(), services.free_port()
    env = {**os.environ, "GRAFANA_URL": fake_grafana.url, "GRAFANA_TOKEN": "test-token",
           "BENCHWATCH_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchwatch", "drift", "serve", "--baselines",
         str(tmp_path / "baselines"), "--port", str(port), "--ingest-port", str(ingest)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{ingest}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"drift serve did not start:\n{out[-3000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _post_alert(am_url: str, ends: datetime | None) -> None:
    alert = {"labels": {"alertname": "BenchwatchFeatureDrift", "model": "digits",
                        "model_version": "v3", "feature": "confidence", "severity": "warning"},
             "annotations": {"summary": "digits v3: feature confidence drifted (score 0.42)"},
             "startsAt": (datetime.now(UTC) - timedelta(minutes=3)).isoformat()}
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    req = urllib.request.Request(f"{am_url}/api/v2/alerts", data=json.dumps([alert]).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()  # noqa: S310 (loopback)


def test_alert_start_and_end_become_one_region(
        drift_cli: str, fake_grafana: RecordingGrafana,
        alertmanager: Callable[..., services.Alertmanager], tmp_path: Path) -> None:
    token_file = tmp_path / "webhook-token"
    token_file.write_text(TOKEN)
    am = alertmanager({
        "route": {"receiver": "drift", "group_by": ["alertname", "feature"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "drift", "webhook_configs": [{
            "url": f"{drift_cli}/v1/alerts", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer",
                                              "credentials_file": str(token_file)}}}]}],
    })
    _post_alert(am.url, None)

    def posted() -> list[dict[str, object]]:
        return [b for m, p, b in fake_grafana.requests if m == "POST" and p == "/api/annotations"]

    wait_until(lambda: posted(), 40, "an annotation posted for the firing alert")
    body = posted()[0]
    assert "feature:confidence" in body["tags"] and "benchwatch" in body["tags"]
    assert "score 0.42" in str(body["text"])
    assert abs(int(body["time"]) / 1000 - (time.time() - 180)) < 30  # the alert's start
    _post_alert(am.url, datetime.now(UTC) - timedelta(seconds=1))
    wait_until(lambda: any(method == "PATCH" for method, _, _ in fake_grafana.requests), 40,
               "the annotation to be closed when the alert resolved")
    assert len(posted()) == 1
