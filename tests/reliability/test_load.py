"""Load: a 10 000 requests/s target through the probed example server for 60 s on loopback.

Real pieces: the example server (asyncio HTTP, ONNX Runtime) in its own process with probes
configured by its flags, every request sampled (rate 1.0) to a real collector
over HTTP; the bounded load generator (tests/reliability/loadgen.py) in another process.

Asserted: every request answered 200 with the same bytes for the same input (no error added
by the probe), the probe counted every request exactly, nothing raised inside the probe, the
server's memory flat over the run, and every sampled request either reached the collector or
was counted as dropped — exactly. On this 2-core machine (shared with other work) Python does
not reach 10 000/s; the rate reached is printed and kept in the test's JSON output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchwatch import promtext
from benchwatch.services import free_port, wait_http
from collector import Collector, WindowStore
from collector.http_server import ingest_server
from probes import metric_names as m

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOADGEN = Path(__file__).with_name("loadgen.py")
DURATION_S = float(os.environ.get("BENCHWATCH_LOAD_SECONDS", "60"))
UNSAMPLED_S = min(DURATION_S, 20.0)
TARGET_RATE = 10_000.0


def test_load_every_request_sampled_60s(tmp_path: Path) -> None:
    """The harshest case for accounting: every request becomes a sample sent over HTTP."""
    _run_load(tmp_path, sample_rate=1.0, duration_s=DURATION_S, exact_samples=True)


def test_load_probe_only(tmp_path: Path) -> None:
    """The probe alone (no sampling): the rate the server reaches with the probe on."""
    _run_load(tmp_path, sample_rate=0.0, duration_s=UNSAMPLED_S, exact_samples=False)


def _run_load(tmp_path: Path, sample_rate: float, duration_s: float,
              exact_samples: bool) -> None:
    store = WindowStore(tmp_path / "collector.sqlite", max_per_feature=5000,
                        max_sample_ids=2_000_000)
    collector = Collector(store)
    ingest = ingest_server(collector, port=0).start()
    port, metrics_port = free_port(), free_port()
    # a small sample queue, so that under this load some samples are dropped: the accounting
    # (delivered + counted as dropped == served) is then tested on both sides
    env = {**os.environ, "BENCHWATCH_QUEUE_SIZE": os.environ.get("BENCHWATCH_LOAD_QUEUE", "300"),
           "BENCHWATCH_TOKEN": ""}
    server = subprocess.Popen(
        [sys.executable, "-m", "benchwatch.example.server", "--port", str(port),
         "--metrics-port", str(metrics_port), "--sink", f"{ingest.url}/v1/samples",
         "--sample-rate", str(sample_rate), "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        proc = psutil.Process(server.pid)
        loadgen = subprocess.Popen(
            [sys.executable, str(LOADGEN), "--port", str(port), "--rate", str(TARGET_RATE),
             "--duration", str(duration_s)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        rss: list[tuple[float, int]] = []
        t0 = time.monotonic()
        while loadgen.poll() is None:
            rss.append((time.monotonic() - t0, proc.memory_info().rss))
            time.sleep(1.0)
        out, _ = loadgen.communicate(timeout=30)
        load = json.loads(out.strip().splitlines()[-1])

        # every sampled request reaches the collector or is counted as dropped, exactly
        deadline = time.monotonic() + 30
        while True:
            s = promtext.read(metrics_url, timeout_s=5)
            served = s.total(m.REQUESTS)
            dropped = s.total(m.DROPPED)
            accepted = collector.totals().accepted
            if not exact_samples or accepted + dropped >= served or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.5)
        faults = {dict(k).get("fault"): v for k, v in s.get(m.FAULTS).items()}
        errors = s.total(m.ERRORS)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        ingest.stop()
        totals = collector.totals()
        store.close()

    # settle: the first 25% of the run is warm-up (allocator, ORT arenas, histogram shards)
    steady = [m for t, m in rss if t >= duration_s * 0.25]
    growth_mb = (max(steady) - steady[0]) / 2**20 if steady else 0.0
    figures = {**load, "sample_rate": sample_rate, "probe_counted": served, "collector_accepted": accepted,
               "probe_dropped": dropped, "collector_duplicates": totals.duplicates,
               "server_rss_mb_start": round(steady[0] / 2**20, 1) if steady else None,
               "server_rss_growth_mb": round(growth_mb, 1), "probe_faults": faults}
    print("\nLOAD FIGURES " + json.dumps(figures))
    (tmp_path / "load.json").write_text(json.dumps(figures, indent=2))

    assert load["broken_connections"] == 0, figures
    assert load["sent"] == load["answered"] == load["status"].get("200"), figures
    assert load["mismatched"] == 0, "the same input got different answers under load"
    assert served == load["answered"], "the probe did not count every request exactly"
    assert errors == 0, figures
    assert faults.get("output_stats", 0) == faults.get("sampling", 0) == 0, figures
    if exact_samples:
        assert accepted + dropped == served, f"samples unaccounted for: {figures}"
    else:
        assert accepted == dropped == 0, figures
    assert totals.rejected_total == 0, totals
    assert growth_mb < 25, f"server memory grew {growth_mb:.1f} MiB during the steady run"
    assert load["rate_reached"] > 500, figures  # far below the target only if something broke
