"""Fast checks of the demo's pieces: argument errors, the exposition reader, pairing live figures
with baseline figures from the same point, the traffic status file, --no-prometheus."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from benchwatch import promtext
from benchwatch.cli import main
from benchwatch.demo.session import (
    BENCH_MAX_S,
    RATE_QPS,
    DemoConfig,
    _extend_window,
    _RunState,
    _window_edge_due,
    _window_full,
    baseline_at_points,
    before_drift,
    bench_calls,
)
from benchwatch.demo.traffic import read_status, write_status
from benchwatch.demo.view import NO_BASELINE, DemoStatus, render
from benchwatch.errors import UsageError
from drift.baseline import Baseline
from drift.figures import Figure
from probes import metric_names as m

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


def _baseline(figures: list[Figure] | dict[str, float]) -> Baseline:
    conf = np.random.default_rng(0).uniform(0.5, 1.0, 200).tolist()
    return Baseline.build("digits", "v1", {"confidence": conf}, figures, source="test")


def test_live_figures_pair_only_with_baseline_figures_from_the_same_point() -> None:
    b = _baseline([
        Figure("latency_p99_s", 0.0002, "model_call", "single_stream", 3000.0),
        Figure("latency_p99_s", 0.0012, "model_call", "server_40qps", 39.0),
        Figure("latency_p99_s", 0.0090, "http_client", "server_40qps", 39.0),
        Figure("latency_p50_s", 0.0003, "harness", "single_stream", 3000.0),
    ])
    at = baseline_at_points(b, rate_qps=40.0)
    assert at["model_call"]["latency_p99_s"].value == 0.0012  # the scenario at the demo's rate
    assert at["http_client"]["latency_p99_s"].value == 0.0090
    assert "latency_p50_s" not in at["model_call"]  # measured elsewhere (harness): not paired
    assert "latency_p50_s" not in at["http_client"]


def test_a_baseline_without_point_tagged_figures_is_never_compared() -> None:
    legacy = _baseline({"latency_p50_s": 0.0005, "latency_p99_s": 0.001})  # point unknown
    at = baseline_at_points(legacy, rate_qps=40.0)
    assert at == {"model_call": {}, "http_client": {}}
    status = DemoStatus(elapsed_s=1.0, duration_s=10.0, drift_at_s=5.0, drifting=False,
                        requests=10, errors=0, qps=40.0, p50_s=0.0002, p99_s=0.0009,
                        client_p50_s=0.001, client_p99_s=0.004, baseline=at)
    console = Console(file=io.StringIO(), width=200)
    console.print(render(status, "t"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    rows = [line for line in text.splitlines() if "p99 model call" in line or "p99 HTTP" in line]
    assert len(rows) == 2 and all(NO_BASELINE in row and "×" not in row for row in rows), text


def test_the_bench_run_holds_as_many_calls_as_the_live_window() -> None:
    # 40 s of clean traffic at 40 req/s less a scrape interval (5 s) and the 100 warm-up
    # requests: 1,300 calls
    assert bench_calls(DemoConfig(rate_qps=40.0, drift_at_s=40.0)) == 1300
    assert bench_calls(DemoConfig(rate_qps=40.0, drift_at_s=5.0)) == 762  # p99's minimum + 100
    assert bench_calls(DemoConfig(rate_qps=40.0, drift_at_s=600.0)) == int(40 * BENCH_MAX_S)


def test_each_model_has_its_own_default_rate() -> None:
    # the classifier's p99 needs thousands of calls before the drift; the language model's
    # streams cost tens of ms each, so it keeps a lighter load
    assert DemoConfig().rate == RATE_QPS["digits"] == 200.0
    assert bench_calls(DemoConfig()) == 6900  # 200 req/s x 35 s less the warm-up
    assert DemoConfig(model="lm").rate == RATE_QPS["lm"] == 40.0
    assert DemoConfig(model="lm", rate_qps=10.0).rate == 10.0
    with pytest.raises(UsageError, match="--rate must be > 0"):
        DemoConfig(rate_qps=-1.0).validate()


def _probe_scrape(calls: int, slow: int) -> promtext.Scrape:
    """A model server's histogram: `calls` calls, `slow` of them in the 5 ms bucket."""
    text = "".join(
        f'benchwatch_inference_duration_seconds_bucket{{le="{le}",model="digits"}} {n}\n'
        for le, n in (("0.0002", calls - slow), ("0.005", calls), ("+Inf", calls)))
    text += f'benchwatch_inference_duration_seconds_count{{model="digits"}} {calls}\n'
    return promtext.parse("# TYPE benchwatch_inference_duration_seconds histogram\n" + text)


def test_the_live_window_is_cut_at_the_bench_runs_number_of_calls() -> None:
    state = _RunState(window_calls=1000)
    state.warm_probe = _probe_scrape(200, 0)
    state.clean_probe = _probe_scrape(900, 0)
    assert not _window_full(state)
    state.clean_probe = _probe_scrape(1200, 30)  # 1,000 calls after the warm-up
    assert _window_full(state)
    live = before_drift(state)["model_call"]
    assert live["live_calls"] == 1000 and live["baseline_calls"] == 1000
    assert live["live_p99_s"] is not None and 0.0002 < live["live_p99_s"] <= 0.005


def test_the_live_window_is_read_from_the_server_when_its_edges_are_sent() -> None:
    # the view's reads come every 5 s (1,000 calls at 200 req/s), and from Prometheus' copy;
    # the window's own edges are read from the server when the traffic has sent them
    state = _RunState(window_calls=1000)
    assert not _window_edge_due(state, {"sent": 99})
    assert _window_edge_due(state, {"sent": 100})  # the warm-up is done
    _extend_window(state, _probe_scrape(60, 0))  # a read that did not see it yet
    assert state.warm_probe is None
    _extend_window(state, _probe_scrape(104, 0))
    assert state.warm_probe is not None and not _window_edge_due(state, {"sent": 1103})
    _extend_window(state, _probe_scrape(900, 0))  # the view's read
    _extend_window(state, _probe_scrape(700, 0))  # Prometheus' older copy: ignored
    assert state.clean_probe is not None and state.clean_probe.total(m.REQUESTS) == 900
    assert _window_edge_due(state, {"sent": 1104})
    _extend_window(state, _probe_scrape(1102, 0))  # two calls still in flight
    assert not _window_full(state) and _window_edge_due(state, {"sent": 1150})
    _extend_window(state, _probe_scrape(1150, 40))
    assert _window_full(state) and not _window_edge_due(state, {"sent": 1300})
    _extend_window(state, _probe_scrape(1300, 40))  # past the window: not in it
    assert before_drift(state)["model_call"]["live_calls"] == 1046


def test_traffic_status_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "traffic.json"
    assert read_status(path) is None  # not written yet
    path.write_text('{"sent": 3')  # what a reader of a half-written file would see
    assert read_status(path) is None
    write_status(path, {"sent": 5, "drift_started_at": None})
    assert read_status(path) == {"sent": 5, "drift_started_at": None}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_demo_rules_keep_their_relative_patience(tmp_path: Path) -> None:
    from benchwatch.demo.parts import DEMO_FOR, DEMO_FOR_SCALE, DEMO_RANGE
    from benchwatch.rules import rule_files, shorten_for

    (alerts,) = [f for f in shorten_for(rule_files(), tmp_path, DEMO_FOR, DEMO_RANGE,
                                        scale=DEMO_FOR_SCALE) if f.name == "alerts.rules.yml"]
    text = alerts.read_text()

    def for_of(alert: str) -> str:
        found = re.search(rf"alert: {alert}\n(?:.*\n)*?\s*for: (\S+)", text)
        assert found, alert
        return found.group(1)

    # production 2m and 10m: the drift alert stays quick, a tail must stay high for 30 s
    assert for_of("BenchwatchFeatureDrift") == "6s"
    assert for_of("BenchwatchLatencyP99Regression") == "30s"
    assert "[5m]" not in text
    with pytest.raises(ValueError, match="scale"):
        shorten_for(rule_files(), tmp_path, "1s", scale=2.0)
