"""`benchwatch drift serve|compare` and `benchwatch collector` as a user runs them; and the crash
test: kill -9 the drift service mid-window, restart, nothing accepted lost or counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.cli import main
from benchwatch.services import free_port, wait_http
from probes.sinks.http import HttpSink
from tests.service.conftest import build_baseline, samples

BENCHWATCH = [sys.executable, "-m", "benchwatch"]


def write_csv(path: Path, shift: float, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["x,y,kind"] + [f"{a + shift},{b},{'abc'[k]}" for a, b, k in
                            zip(rng.normal(size=n), rng.normal(size=n), rng.integers(0, 3, n),
                                strict=True)]
    lines.append(",,")  # missing values are allowed
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compare_exit_codes_and_json(tmp_path: Path, capsys: Any) -> None:
    ref = write_csv(tmp_path / "ref.csv", 0.0, 3000, 1)
    same = write_csv(tmp_path / "same.csv", 0.0, 1000, 2)
    moved = write_csv(tmp_path / "moved.csv", 0.5, 1000, 3)
    assert main(["drift", "compare", str(ref), str(same)]) == 0
    capsys.readouterr()
    assert main(["drift", "compare", str(ref), str(moved), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["drift"] is True
    assert [c["column"] for c in payload["columns"] if c["drift"]] == ["x"]
    assert main(["drift", "compare", str(ref), str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["drift", "compare", str(ref), str(moved), "--column", "nope"]) == 2


def serve(baselines: Path, state: Path, metrics: int, ingest: int, *extra: str
          ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*BENCHWATCH, "drift", "serve", "--baselines", str(baselines), "--state", str(state),
         "--port", str(metrics), "--ingest-port", str(ingest), "--interval", "0.5",
         "--min-samples", "50", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> str:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def test_serve_refuses_off_loopback_without_token(baselines: Path, tmp_path: Path) -> None:
    out = subprocess.run([*BENCHWATCH, "drift", "serve", "--baselines", str(baselines),
                          "--host", "0.0.0.0", "--port", "0", "--ingest-port", "0"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "BENCHWATCH_TOKEN": ""})
    assert out.returncode == 2 and "without a token" in out.stderr


def test_kill_9_mid_window_then_restart_loses_and_doubles_nothing(baselines: Path,
                                                                  tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    metrics, ingest = free_port(), free_port()
    proc = serve(baselines, state, metrics, ingest, "--token", "tk")
    acked = attempted = 0
    try:
        wait_http(f"http://127.0.0.1:{ingest}/healthz")
        sink = HttpSink(f"http://127.0.0.1:{ingest}", token="tk", retries=0, timeout_s=5)
        # kill -9 from another thread at an arbitrary moment while batches are in flight
        threading.Timer(1.0, os.kill, (proc.pid, signal.SIGKILL)).start()
        for i in range(10_000):
            attempted = i + 1
            try:
                sink.send(samples(40, seed=i, prefix=f"b{i}-"))
            except Exception:
                break
            acked = i + 1
        proc.wait(timeout=10)
    finally:
        stop(proc, signal.SIGKILL)
    assert acked >= 3 and attempted == acked + 1
    proc = serve(baselines, state, metrics, ingest, "--token", "tk")
    try:
        wait_http(f"http://127.0.0.1:{ingest}/healthz")
        sink = HttpSink(f"http://127.0.0.1:{ingest}", token="tk")
        # the sender redelivers what it is unsure of: every acknowledged batch is a duplicate,
        # the one in flight at the kill is all-or-nothing
        for i in range(attempted):
            sink.send(samples(40, seed=i, prefix=f"b{i}-"))
            report = sink.last_report
            if i < acked:
                assert report == {"accepted": 0, "duplicates": 40, "rejected": {}}, i
            else:
                assert report in ({"accepted": 0, "duplicates": 40, "rejected": {}},
                                  {"accepted": 40, "duplicates": 0, "rejected": {}})
        req = urllib.request.Request(f"http://127.0.0.1:{ingest}/v1/status",
                                     headers={"Authorization": "Bearer tk"})
        time.sleep(1.0)  # one evaluation
        with urllib.request.urlopen(req, timeout=5) as r:
            status = json.loads(r.read())
        windows = {f["feature"]: f["window_samples"] for f in status["features"]}
        assert windows["confidence"] == min(attempted * 40, 5000)
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out


def test_collector_serve_and_windows(tmp_path: Path) -> None:
    state, port = tmp_path / "c.sqlite", free_port()
    proc = subprocess.Popen([*BENCHWATCH, "collector", "serve", "--state", str(state),
                             "--port", str(port), "--model", "digits/v3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        sink = HttpSink(f"http://127.0.0.1:{port}")
        sink.send(samples(30) + samples(5, model="other"))
        assert sink.last_report == {"accepted": 30, "duplicates": 0,
                                    "rejected": {"unknown_model": 5}}
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    listing = subprocess.run([*BENCHWATCH, "collector", "windows", "--state", str(state),
                              "--json"], capture_output=True, text=True, timeout=60)
    rows = json.loads(listing.stdout)
    assert {(r["feature"], r["values"]) for r in rows} == {("confidence", 30),
                                                           ("predicted_class", 30)}


@pytest.fixture
def baselines(tmp_path: Path) -> Path:
    d = tmp_path / "baselines"
    d.mkdir()
    build_baseline(d)
    return d


def test_every_listening_socket_binds_loopback_by_default(baselines: Path,
                                                          tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    metrics, ingest = free_port(), free_port()
    proc = serve(baselines, tmp_path / "s.sqlite", metrics, ingest)
    try:
        wait_http(f"http://127.0.0.1:{ingest}/healthz")
        wait_http(f"http://127.0.0.1:{metrics}/metrics")
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert {a.port for a in listening} == {metrics, ingest}
        assert {a.ip for a in listening} == {"127.0.0.1"}, listening
    finally:
        stop(proc)
