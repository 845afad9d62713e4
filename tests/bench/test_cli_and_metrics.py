"""`benchwatch bench` end to end (baseline in the drift format) and the published signals:
probe metrics from the example server and the verdict gauge, both scraped by a real Prometheus."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from benchwatch import promtext
from benchwatch.cli import main
from benchwatch.services import Prometheus, free_port
from probes import metric_names as m


def test_bench_writes_a_side_by_side_run_and_drift_baselines(
        tmp_path: Path, artifacts_dir: Path,
        chromium_screenshot: Callable[..., str]) -> None:
    code = main(["bench", "--backend", "onnxruntime", "--backend", "torch", "--backend", "null",
                 "-o", str(tmp_path), "--queries", "700", "--offline-samples", "3000",
                 "--no-server", "--no-progress"])
    assert code == 0
    (run,) = tmp_path.glob("digits-*")
    doc = json.loads((run / "results.json").read_text())
    assert [r["backend"] for r in doc["runs"]] == ["onnxruntime", "torch", "null"]
    ort = doc["runs"][0]
    assert ort["single_stream"]["significant"] == {"p50": True, "p90": True, "p99": True}
    assert ort["accuracy"]["accuracy"] > 0.9 and ort["offline"]["throughput_qps"] > 0
    assert doc["runs"][0]["accuracy"] == doc["runs"][1]["accuracy"]  # same model, same inputs

    from drift.baseline import Baseline

    b = Baseline.load(doc["baselines"]["onnxruntime"])
    assert b.model == "digits" and {"predicted_class", "confidence", "entropy"} <= set(b.features)
    assert {f.name for f in b.figures} == {"latency_p50_s", "latency_p90_s", "latency_p99_s",
                                           "throughput_qps", "accuracy",
                                           # the scorecard's robustness (no price given: no cost)
                                           "corruption_accuracy", "corruption_error", "mce",
                                           "mean_corruption_error", "flip_rate"}
    # in process: the bench's own @probe gives the model_call point beside the harness's
    assert {f.point for f in b.figures} == {"model_call", "harness", "outputs"}
    assert b.figure("latency_p99_s", "model_call", "single_stream") is not None
    assert "null" not in doc["baselines"]
    html = (run / "report.html").read_text()
    assert "onnxruntime" in html and "<polyline" in html
    dom = chromium_screenshot(run / "report.html", artifacts_dir / "bench-report.png")
    assert "<svg" in dom and "torch" in dom and "0.9688" in dom
    assert "Output distributions" in dom and doc["outputs"]["torch"]["predicted_class_counts"]


def test_bench_http_backend_then_replay_against_that_baseline(
        tmp_path: Path, example_server: Callable[..., str]) -> None:
    url = example_server()
    assert main(["bench", "--backend", "http", "--url", url, "-o", str(tmp_path / "b"),
                 "--queries", "700", "--offline-samples", "1000", "--no-server",
                 "--no-progress"]) == 0
    (run,) = (tmp_path / "b").glob("digits-*")
    baseline = json.loads((run / "results.json").read_text())["baselines"]["http"]
    slow = example_server("--delay-ms", "2")
    code = main(["replay", "--canary", slow, "--baseline", baseline, "-o", str(tmp_path / "r"),
                 "--queries", "700", "--no-progress"])
    (rdir,) = (tmp_path / "r").glob("replay-*")
    doc = json.loads((rdir / "verdict.json").read_text())
    by = {x["metric"]: x for x in doc["verdict"]["metrics"]}
    assert code == 1 and by["latency_p50"]["outcome"] == "fail"
    assert by["accuracy"]["reason"].startswith("exact binomial")  # vs the baseline figure
    assert by["output_predicted_class"]["outcome"] == "pass"  # same model: same outputs


def test_bench_of_a_probed_endpoint_stores_both_points_with_their_load(
        tmp_path: Path, example_server: Callable[..., str]) -> None:
    """--probe-metrics: the server's own probe histogram (what live monitoring reads) is
    scraped around each scenario and stored beside the HTTP client's figures, each with the
    request rate its scenario held; a fixed --rate adds a scenario at that load."""
    metrics_port = free_port()
    url = example_server("--metrics-port", str(metrics_port), "--version", "v7")
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    assert main(["bench", "--backend", "http", "--url", url, "--probe-metrics", metrics,
                 "--rate", "150", "-o", str(tmp_path), "--queries", "700",
                 "--offline-samples", "1000", "--no-server", "--no-progress"]) == 0
    (run,) = tmp_path.glob("digits-*")
    doc = json.loads((run / "results.json").read_text())
    calls = doc["runs"][0]["model_call"]
    assert calls["single_stream"]["calls"] == 700  # exactly the timed queries, from the server
    assert calls["server_150qps"]["calls"] == 762

    from drift.baseline import Baseline

    b = Baseline.load(doc["baselines"]["http"])
    assert b.version == "v7"
    for scenario, rate in (("single_stream", None), ("server_150qps", 150.0)):
        for name in ("latency_p50_s", "latency_p99_s"):
            call = b.figure(name, "model_call", scenario)
            client = b.figure(name, "http_client", scenario)
            assert call is not None and client is not None
            assert call.rate_qps == client.rate_qps and call.rate_qps
            if rate:
                assert 0.7 * rate < call.rate_qps < 1.3 * rate
        # the model call is inside the HTTP request: the probe's p50 is below the client's
        assert b.figure("latency_p50_s", "model_call", scenario).value < b.figure(  # type: ignore[union-attr]
            "latency_p50_s", "http_client", scenario).value  # type: ignore[union-attr]
    assert b.figure("latency_p99_s", "harness") is None
    # the live rule's lookup: a rate near 150 req/s gets the fixed-rate scenario
    assert b.figure("latency_p99_s", "model_call", rate_qps=120).scenario == "server_150qps"  # type: ignore[union-attr]


def test_bench_reads_the_probe_as_often_as_prometheus_would(
        tmp_path: Path, example_server: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """During the run the served probe is read every --scrape-every s, as production's
    Prometheus reads it (its cost lands in the baseline's tail as in the live one's); 0: only
    around each scenario."""
    metrics_port = free_port()
    url = example_server("--metrics-port", str(metrics_port))
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    fetch = promtext.fetch
    periodic: list[str] = []

    def counted(target: str, *args: object, **kwargs: object) -> str:
        if threading.current_thread().name == "bench-probe-scrape":
            periodic.append(target)
        return fetch(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(promtext, "fetch", counted)
    common = ["bench", "--backend", "http", "--url", url, "--probe-metrics", metrics,
              "--queries", "300", "--offline-samples", "500", "--no-server", "--no-progress"]
    assert main([*common, "--scrape-every", "0.1", "-o", str(tmp_path / "a")]) == 0
    assert len(periodic) >= 5 and set(periodic) == {metrics}, periodic
    periodic.clear()
    assert main([*common, "--scrape-every", "0", "-o", str(tmp_path / "b")]) == 0
    assert periodic == []
    assert main([*common, "--scrape-every", "-1", "-o", str(tmp_path / "c")]) == 2


def test_probe_metrics_that_do_not_answer_are_a_usage_error(
        tmp_path: Path, example_server: Callable[..., str]) -> None:
    url = example_server()  # no --metrics-port: nothing to scrape
    code = main(["bench", "--backend", "http", "--url", url, "--probe-metrics",
                 f"http://127.0.0.1:{free_port()}/metrics", "-o", str(tmp_path),
                 "--queries", "100", "--no-server", "--no-progress"])
    assert code == 2


@pytest.mark.prometheus
def test_probe_metrics_and_verdict_gauge_reach_prometheus(
        tmp_path: Path, example_server: Callable[..., str],
        prometheus: Callable[..., Prometheus]) -> None:
    metrics_port, gauge_port = free_port(), free_port()
    primary = example_server("--metrics-port", str(metrics_port), "--version", "v1")
    prom = prometheus({"example": [f"127.0.0.1:{metrics_port}"],
                       "replay": [f"127.0.0.1:{gauge_port}"]})
    out: dict[str, int] = {}
    t = threading.Thread(target=lambda: out.setdefault("code", main(
        ["replay", "--canary", primary, "--primary", primary, "-o", str(tmp_path),
         "--queries", "700", "--no-progress", "--metrics-port", str(gauge_port),
         "--metrics-hold-s", "6"])))
    t.start()
    try:
        gauge = prom.wait_for(f'{m.CANARY_VERDICT}{{model="digits"}}', timeout_s=60)
        count = prom.wait_for(f'{m.REQUESTS}{{model="digits",model_version="v1"}}', timeout_s=30)
    finally:
        t.join(timeout=90)
    (rdir,) = tmp_path.glob("replay-*")
    outcome = json.loads((rdir / "verdict.json").read_text())["verdict"]["outcome"]
    expected = {"pass": 1, "inconclusive": 0, "fail": -1}[outcome]
    assert float(gauge[0]["value"][1]) == expected
    assert gauge[0]["metric"]["outcome"] == outcome and out["code"] in (0, 4)
    assert float(count[0]["value"][1]) >= 2 * 700  # canary and primary are one server here
    with pytest.raises(OSError):  # the endpoint is gone once the hold is over
        promtext.fetch(f"http://127.0.0.1:{gauge_port}/metrics")


def test_bench_repeats_alternate_and_pool(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--backend", "onnxruntime", "--backend", "null", "--repeats", "2",
                 "-o", str(tmp_path), "--queries", "400", "--offline-samples", "1000",
                 "--no-server", "--no-progress", "--energy", "off"])
    assert code == 0
    (run,) = tmp_path.glob("digits-*")
    doc = json.loads((run / "results.json").read_text())
    assert doc["settings"]["repeats"] == 2 and doc["settings"]["energy"] == "off"
    ss = doc["runs"][0]["single_stream"]
    assert ss["n"] == 800 and ss["significant"]["p99"]  # two repeats of 400, pooled
    assert "null / onnxruntime: p50 x" in capsys.readouterr().err
