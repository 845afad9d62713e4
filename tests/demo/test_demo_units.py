"""Fast checks of the demo's pieces: argument errors, the exposition reader, --no-prometheus."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchwatch import promtext
from benchwatch.cli import main
from benchwatch.demo.session import DemoConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args,message", [
    (["--duration", "0"], "--duration must be > 0"),
    (["--duration", "10", "--drift-at", "10"], "--drift-at must be in"),
    (["--drift-at", "-1"], "--drift-at must be in"),
    (["--rate", "0"], "--rate must be > 0"),
    (["--port", "70000"], "--port must be in 0..65535"),
])
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *args]) == 2
    assert f"benchwatch demo: error: {message}" in capsys.readouterr().err


def test_config_defaults_are_valid() -> None:
    DemoConfig().validate()


def test_quantile_matches_prometheus_histogram_quantile() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.2], 10 in (0.2, 0.4]
    cum = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, math.inf: 100.0}
    assert promtext.quantile(0.5, cum) == pytest.approx(0.1)
    assert promtext.quantile(0.7, cum) == pytest.approx(0.15)
    assert promtext.quantile(0.95, cum) == pytest.approx(0.3)
    assert promtext.quantile(0.5, {}) is None
    assert promtext.quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert promtext.quantile(0.99, {0.1: 1.0, math.inf: 2.0}) == 0.1  # +Inf bucket


def test_quantile_from_a_real_histogram_scrape() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    reg = CollectorRegistry()
    h = Histogram("lat_seconds", "x", buckets=list(np.linspace(0.001, 0.1, 100)), registry=reg)
    values = np.random.default_rng(0).uniform(0, 0.1, 20_000)
    for v in values:
        h.observe(v)
    s = promtext.parse(generate_latest(reg).decode(), 0.0)
    got = promtext.quantile(0.9, promtext.buckets(s, "lat_seconds"))
    assert got == pytest.approx(float(np.quantile(values, 0.9)), rel=0.02)
    old = {0.1: 10.0, math.inf: 10.0}
    assert promtext.delta({0.1: 15.0, math.inf: 15.0}, old) == {0.1: 5.0, math.inf: 5.0}
    assert promtext.delta({0.1: 3.0}, {0.1: 10.0}) == {0.1: 3.0}  # counter reset


def test_scrape_of_nothing_is_none() -> None:
    from benchwatch.services import free_port

    assert promtext.scrape(f"http://127.0.0.1:{free_port()}/metrics", 0.0) is None


@pytest.mark.slow
def test_no_prometheus_still_shows_drift_and_writes_a_page(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchwatch", "demo", "--plain", "--no-prometheus",
         "--duration", "16", "--drift-at", "4", "--port", "0", "--metrics-port", "0",
         "--drift-port", "0", "--workdir", str(tmp_path / "demo")],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["drift_detected_at"] is not None, run.stdout[-3000:]
    assert summary["alert_fired_at"] is None and summary["missing"] == []
    report = re.search(r"^report: (.+)$", run.stdout, re.MULTILINE)
    assert report and "without Prometheus" in Path(report.group(1)).read_text()
    assert "--no-prometheus" in run.stdout
