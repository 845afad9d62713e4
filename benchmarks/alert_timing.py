"""Time to page and time to resolve for a drift incident with the SHIPPED settings: the packaged
rules (`for: 2m`, Prometheus scrape and evaluation every 15 s as in deploy/prometheus.yml), the
packaged Alertmanager routing (group_wait 30s, group_interval 1m, the per-feature alerts
inhibited), and the drift service's defaults (evaluation every 30 s, windows aged after 300 s).

    .venv/bin/python benchmarks/alert_timing.py [--rate 20] [--repeats 1]

One tabular model, 12 inputs, 8 of which drift together at t0 (0.6 to 2.7 sigma). Reported per
run: seconds from t0 to the one notification at the drift service's webhook, notifications
received while drifting (1 = one incident, one page), and seconds from the traffic being
normal again to the resolved notification. A run takes about 6-12 minutes. Everything runs on
loopback with the Debian prometheus and prometheus-alertmanager binaries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import probes  # noqa: E402
from benchwatch import assets, deploy, services  # noqa: E402
from benchwatch.rules import rule_files, shorten_for  # noqa: E402
from drift import Baseline  # noqa: E402
from drift.service.alerts import ReceivedAlert  # noqa: E402
from drift.service.engine import DriftService, ServiceConfig  # noqa: E402

TOKEN = "alert-timing"
N_FEATURES = 12
SHIFTS = [0.6 + 0.3 * k for k in range(8)]


def wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def one_run(rate: float, workdir: Path) -> tuple[float, int, float]:
    rng = np.random.default_rng(0)
    bdir = workdir / "baselines"
    bdir.mkdir(parents=True)
    Baseline.build("tab", "v1", {f"f{k}": rng.normal(size=3000) for k in range(N_FEATURES)},
                   source="alert-timing").save(bdir / "tab-v1.json")
    service = DriftService(ServiceConfig(bdir, state_path=workdir / "state.sqlite",
                                         metrics_port=0, ingest_port=0, token=TOKEN)).start()
    notes: list[Sequence[ReceivedAlert]] = []
    service.alerts.subscribe(notes.append)
    token_file = workdir / "token"
    token_file.write_text(TOKEN)
    cfg = yaml.safe_load(assets.read_text(deploy.ALERTMANAGER))  # as shipped but the webhook
    (hook,) = [w for r in cfg["receivers"] for w in r.get("webhook_configs", [])]
    hook["url"] = f"{service.url}/v1/alerts"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    am = services.start_alertmanager(cfg)
    probes.configure("alert-timing", prometheus_port=services.free_port(), sink=service.sink(),
                     sample_rate=1.0, gpu="off")
    runtime = probes.current()
    assert runtime is not None and runtime.prometheus_url is not None
    rules = shorten_for(rule_files(), workdir / "rules", "1s", scale=1.0)  # unchanged copies
    prom = services.start_prometheus(
        {"drift": [f"127.0.0.1:{service.metrics.port}"],  # type: ignore[union-attr]
         "probe": [runtime.prometheus_url.removeprefix("http://").removesuffix("/metrics")]},
        rules, alertmanager=am.url, scrape_interval="15s", evaluation_interval="15s")
    shift = np.zeros(N_FEATURES)
    stop = threading.Event()
    gen = np.random.default_rng(1)

    @probes.probe(model="tab", version="v1", outputs=None,
                  inputs=lambda x: [{f"f{k}": float(v) for k, v in enumerate(row)} for row in x])
    def predict(x: np.ndarray) -> None:
        return None

    def traffic() -> None:
        while not stop.wait(8 / rate):
            predict(gen.normal(size=(8, N_FEATURES)) + shift)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        wait(lambda: len(service.status()["features"]) == N_FEATURES, 300, "clean windows")
        shift[:len(SHIFTS)] = SHIFTS
        t0 = time.monotonic()
        wait(lambda: any(a.status == "firing" for n in notes for a in n), 900, "the page")
        paged = time.monotonic() - t0
        # keep drifting for two more group intervals: any further notification would show
        end = time.monotonic() + 150
        while time.monotonic() < end:
            time.sleep(1)
        pages = len(notes)
        shift[:] = 0.0
        t1 = time.monotonic()
        wait(lambda: any(a.status == "resolved" for n in notes for a in n), 1200, "resolution")
        resolved = time.monotonic() - t1
        return paged, pages, resolved
    finally:
        stop.set()
        thread.join(timeout=10)
        probes.shutdown()
        prom.stop()
        am.stop()
        service.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20.0, help="sampled rows per second")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    runs = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="alert-timing-") as d:
            paged, pages, resolved = one_run(args.rate, Path(d))
        runs.append((paged, pages, resolved))
        print(f"run {i + 1}: page {paged:.0f} s after the drift, {pages} notification(s) while "
              f"drifting, resolved {resolved:.0f} s after normal traffic", flush=True)
    if len(runs) > 1:
        print(f"median: page {statistics.median(r[0] for r in runs):.0f} s, resolved "
              f"{statistics.median(r[2] for r in runs):.0f} s")


if __name__ == "__main__":
    main()
