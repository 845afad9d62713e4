"""One incident, one page: eight of a model's twelve inputs drift together and the drift
service's webhook gets ONE notification (BenchwatchModelDrift for the model and version) that
lists the drifted features ranked; no per-feature notification; when the traffic is normal
again the windows age out by time and the one resolved notification follows.

Everything is real: probed calls whose `inputs=` give each row its own features, the drift
service (windows aged by --max-age), Prometheus with the packaged rules (`for:` shortened to
1 s with benchwatch.rules.shorten_for) and Alertmanager with the packaged routing and inhibition
(group_wait/group_interval shortened to 1 s; grouping and inhibit rules as shipped)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import probes
from benchwatch import assets, deploy
from benchwatch.rules import rule_files, shorten_for
from benchwatch.services import free_port
from drift import Baseline
from drift.service.alerts import ReceivedAlert
from drift.service.engine import DriftService, ServiceConfig
from tests.support.wait import wait_until

pytestmark = pytest.mark.prometheus

TOKEN = "one-page-token"
N_FEATURES = 12
# feature -> shift in reference standard deviations; f8..f11 stay put
SHIFTS = {f"f{k}": 0.6 + 0.3 * k for k in range(8)}
MAX_AGE_S = 8.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DriftService]:
    rng = np.random.default_rng(0)
    d = tmp_path / "baselines"
    d.mkdir()
    Baseline.build("tab", "v1", {f"f{k}": rng.normal(size=3000) for k in range(N_FEATURES)},
                   source="one-page").save(d / "tab-v1.json")
    svc = DriftService(ServiceConfig(d, state_path=tmp_path / "state.sqlite", metrics_port=0,
                                     ingest_port=0, interval_s=0.5, min_samples=200,
                                     token=TOKEN, max_age_s=MAX_AGE_S)).start()
    yield svc
    svc.stop()


class Traffic:
    """Batches of mixed rows through a real probe, in a thread, until stopped."""

    def __init__(self, service: DriftService) -> None:
        probes.configure("one-page", prometheus_port=free_port(), sink=service.sink(),
                         sample_rate=1.0, gpu="off")
        self.shift = np.zeros(N_FEATURES)
        self._stop = threading.Event()
        rng = np.random.default_rng(1)

        @probes.probe(model="tab", version="v1", outputs=None,
                      inputs=lambda x: [{f"f{k}": float(v) for k, v in enumerate(row)}
                                        for row in x])
        def predict(x: np.ndarray) -> None:
            return None

        def run() -> None:
            while not self._stop.wait(0.02):
                predict(rng.normal(size=(32, N_FEATURES)) + self.shift)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        probes.shutdown()


def _alertmanager_config(service: DriftService, token_file: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = yaml.safe_load(assets.read_text(deploy.ALERTMANAGER))
    assert cfg["route"]["group_by"] == ["alertname", "model", "model_version"]
    cfg["route"].update(group_wait="1s", group_interval="1s")
    (hook,) = [w for r in cfg["receivers"] for w in r.get("webhook_configs", [])]
    hook["url"] = f"{service.url}/v1/alerts"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return cfg


def test_many_drifted_inputs_page_once_ranked_and_resolve(
        service: DriftService, prometheus: Any, alertmanager: Any, tmp_path: Path) -> None:
    notifications: list[Sequence[ReceivedAlert]] = []
    service.alerts.subscribe(notifications.append)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    am = alertmanager(_alertmanager_config(service, token_file))
    traffic = Traffic(service)
    try:
        runtime = probes.current()
        assert runtime is not None and runtime.prometheus_url is not None
        prom = prometheus(
            {"drift": [f"127.0.0.1:{service.metrics.port}"],  # type: ignore[union-attr]
             "probe": [runtime.prometheus_url.removeprefix("http://").removesuffix("/metrics")]},
            rule_files=shorten_for(rule_files(), tmp_path / "rules", "1s"), alertmanager=am.url)

        def evaluated() -> list[dict[str, Any]]:
            return list(service.status()["features"])

        wait_until(lambda: len(evaluated()) == N_FEATURES, 120, "clean windows evaluated")
        assert not any(f["detected"] for f in evaluated())

        traffic.shift[:len(SHIFTS)] = list(SHIFTS.values())
        drifted_at = time.monotonic()
        wait_until(lambda: any(a.status == "firing" for n in notifications for a in n),
                   120, "a drift notification at the webhook")
        paged_s = time.monotonic() - drifted_at
        # every drifted feature's own alert reaches Alertmanager and stays inhibited there
        wanted = set(SHIFTS)

        def inhibited() -> set[str]:
            return {a["labels"]["feature"] for a in am.alerts()
                    if a["labels"]["alertname"] == "BenchwatchFeatureDrift"
                    and a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]}

        wait_until(lambda: inhibited() >= wanted, 60, "the per-feature alerts inhibited")
        seen = len(notifications)
        end = time.monotonic() + 5  # five group_intervals: nothing else may be sent
        while time.monotonic() < end:
            assert len(notifications) == seen
            time.sleep(0.2)

        firing = [a for n in notifications for a in n if a.status == "firing"]
        assert len(notifications) == 1, [[a.summary for a in n] for n in notifications]
        (page,) = firing
        assert page.name == "BenchwatchModelDrift"
        assert (page.labels["model"], page.labels["model_version"]) == ("tab", "v1")
        assert "feature" not in page.labels
        assert page.annotations["summary"] == f"tab v1: {len(SHIFTS)} feature(s) drifted from " \
                                              "the baseline"
        listed = re.findall(r"\b(f\d+) ([\d.]+)x", page.annotations["description"])
        names = [name for name, _ in listed]
        ratios = [float(r) for _, r in listed]
        # ranked: the furthest over its threshold first, i.e. in order of the shifts
        assert names == sorted(SHIFTS, key=lambda f: -SHIFTS[f]), \
            page.annotations["description"]
        assert ratios == sorted(ratios, reverse=True) and ratios[-1] > 1
        assert page.annotations["reference"] == ""  # 3 000 reference values: large enough

        traffic.shift[:] = 0.0
        normal_at = time.monotonic()
        wait_until(lambda: any(a.status == "resolved" for n in notifications for a in n),
                   MAX_AGE_S + 90, "the resolved notification")
        resolved_s = time.monotonic() - normal_at
        assert len(notifications) == 2, [[a.summary for a in n] for n in notifications]
        (resolved,) = notifications[1]
        assert (resolved.name, resolved.status) == ("BenchwatchModelDrift", "resolved")
        assert not prom.query('ALERTS{alertname="BenchwatchModelDrift"}')
        print(f"one page {paged_s:.1f} s after the drift; resolved {resolved_s:.1f} s after "
              f"normal traffic (windows aged {MAX_AGE_S:g} s)")
    finally:
        traffic.stop()
