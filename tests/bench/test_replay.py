"""End to end: real example servers (primary and canaries) on loopback, `benchwatch replay`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchwatch.cli import main
from benchwatch.services import free_port
from probes import metric_names as m


def replay(tmp_path: Path, canary: str, *extra: str) -> tuple[int, dict[str, Any], Path]:
    parent = tmp_path / f"call{len(list(tmp_path.glob('call*')))}"
    code = main(["replay", "--canary", canary, "-o", str(parent), "--no-progress",
                 "--queries", "1500", *extra])
    (out,) = parent.glob("replay-*")
    return code, json.loads((out / "verdict.json").read_text()), out


def outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {x["metric"]: x["outcome"] for x in doc["verdict"]["metrics"]}


@pytest.fixture(scope="module")
def primary(example_server: Callable[..., str]) -> str:
    return example_server()


def test_identical_canary_is_never_failed(tmp_path: Path, primary: str,
                                          example_server: Callable[..., str]) -> None:
    canary = example_server()
    code, doc, _ = replay(tmp_path, canary, "--primary", primary)
    assert code in (0, 4), doc["verdict"]["reason"]  # PASS, or INCONCLUSIVE on a busy machine
    o = outcomes(doc)
    assert o["accuracy"] == "pass" and o["output_predicted_class"] == "pass"
    assert doc["queries"] == 1500 and doc["canary_version"] == doc["primary_version"]


def test_slow_tail_canary_fails_on_p99(tmp_path: Path, primary: str,
                                       example_server: Callable[..., str],
                                       artifacts_dir: Path,
                                       chromium_screenshot: Callable[..., str]) -> None:
    canary = example_server("--tail-fraction", "0.05", "--tail-delay-ms", "10")
    code, doc, out = replay(tmp_path, canary, "--primary", primary)
    assert code == 1 and doc["verdict"]["outcome"] == "fail"
    assert outcomes(doc)["latency_p99"] == "fail"
    html = (out / "report.html").read_text()
    assert "FAIL" in html and "<polyline" in html and "interval vs margin" in html
    dom = chromium_screenshot(out / "report.html", artifacts_dir / "replay-fail-report.png")
    assert dom.count("<svg") >= 2 and "latency_p99" in dom


def test_worse_accuracy_canary_fails_on_accuracy(tmp_path: Path, primary: str,
                                                 example_server: Callable[..., str]) -> None:
    canary = example_server("--flip-fraction", "0.06")
    code, doc, _ = replay(tmp_path, canary, "--primary", primary)
    assert code == 1 and outcomes(doc)["accuracy"] == "fail"


def test_unreachable_canary_exits_3(tmp_path: Path, primary: str) -> None:
    code, doc, _ = replay(tmp_path, f"http://127.0.0.1:{free_port()}", "--primary", primary)
    assert code == 3 and doc["verdict"]["outcome"] == "error"
    assert "unreachable" in doc["verdict"]["reason"]


def test_timeouts_exit_3_with_partial_results(tmp_path: Path, primary: str,
                                              example_server: Callable[..., str]) -> None:
    canary = example_server("--tail-fraction", "0.01", "--tail-delay-ms", "2000", "--seed", "3")
    # no warm-up: the server's seeded tail falls inside the timed queries, not before them
    code, doc, out = replay(tmp_path, canary, "--primary", primary, "--timeout-s", "0.5",
                            "--warmup", "0")
    assert code == 3 and doc["verdict"]["outcome"] == "error"
    assert "timeout" in doc["errors"][0]
    assert 0 < doc["queries"] < 1500  # what was measured is kept and reported
    assert doc["verdict"]["metrics"]  # ... with the per-metric figures so far
    assert "could not run" in (out / "report.html").read_text()


class _Malformed(BaseHTTPRequestHandler):
    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(json.dumps({"model": "digits", "version": "x", "input_shape": [64],
                               "num_outputs": 10}).encode())

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(b'{"outputs": "not a matrix"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def malformed_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Malformed)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_malformed_responses_exit_3(tmp_path: Path, primary: str, malformed_server: str) -> None:
    code, doc, _ = replay(tmp_path, malformed_server, "--primary", primary)
    assert code == 3 and "malformed" in doc["verdict"]["reason"]


class _ThreeClasses(_Malformed):
    def do_GET(self) -> None:  # noqa: N802 - no /info: shapes are only seen in answers
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        n = len(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["inputs"])
        self._send(json.dumps({"outputs": [[0.1, 0.2, 0.7]] * n}).encode())


def test_model_whose_outputs_do_not_fit_the_suite_exits_3(tmp_path: Path, primary: str) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _ThreeClasses)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        code, doc, _ = replay(tmp_path, f"http://127.0.0.1:{srv.server_address[1]}",
                              "--primary", primary)
    finally:
        srv.shutdown()
        srv.server_close()
    assert code == 3 and "does not fit" in doc["verdict"]["reason"]


def test_bad_baseline_or_a_suite_that_does_not_fit_the_model_exits_2(tmp_path: Path,
                                                                     primary: str) -> None:
    import numpy as np

    from benchwatch.bench.suites import make_suite, save_suite

    path = save_suite(make_suite("wide", np.zeros((10, 32), np.float32), np.zeros(10, int),
                                 {"task": "classification", "num_classes": 10}), tmp_path)
    code, doc, _ = replay(tmp_path, primary, "--baseline", str(tmp_path / "missing.json"))
    assert code == 2 and doc["verdict"]["exit_code"] == 2 and "missing.json" in doc["verdict"]["reason"]
    code, doc, _ = replay(tmp_path, primary, "--suite", str(path), "--primary", primary)
    assert code == 2 and "(32,)" in doc["verdict"]["reason"]


def _fake_gpu_metrics(joules_per_inference: float) -> tuple[ThreadingHTTPServer, str]:
    """No GPU here: a /metrics endpoint standing in for a GPU-serving probe, its counters
    growing with wall time at 2000 inferences/s and the given joules per inference."""
    import time as _time

    t0 = _time.monotonic()

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            n = 2000.0 * (_time.monotonic() - t0)
            body = (
                f"# TYPE {m.ENERGY} counter\n"
                f'{m.ENERGY}{{model="digits"}} {n * joules_per_inference}\n'
                f"# TYPE {m.LATENCY} histogram\n"
                f'{m.REQUESTS}{{model="digits"}} {n}\n'
                f'{m.LATENCY}_sum{{model="digits"}} {n * 1e-4}\n'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/metrics"


def test_energy_per_inference_is_judged_from_probe_metrics(
        tmp_path: Path, primary: str, example_server: Callable[..., str]) -> None:
    canary = example_server()
    p_srv, p_url = _fake_gpu_metrics(0.010)
    c_srv, c_url = _fake_gpu_metrics(0.020)  # the canary burns twice the energy
    try:
        code, doc, _ = replay(tmp_path, canary, "--primary", primary, "--primary-metrics", p_url,
                              "--canary-metrics", c_url, "--energy-window-s", "0.02")
    finally:
        for s in (p_srv, c_srv):
            s.shutdown()
            s.server_close()
    energy = {x["metric"]: x for x in doc["verdict"]["metrics"]}["energy_per_inference"]
    assert energy["gating"] and energy["n_canary"] >= 5
    assert energy["estimate"] == pytest.approx(2.0, rel=0.05)
    assert energy["outcome"] == "fail" and code == 1
