"""The noise floor of the demo's live/baseline model-call p99: the same measurement twice.

One probed example server (`python -m benchwatch.example.server`), the demo's load (the bench's
fixed-rate scenario: Poisson arrivals at the demo's rate, 200 req/s, two clients) and windows
of the demo's (its bench's fixed-rate calls, 6 900; the server read every 5 s as Prometheus
reads it); the model-call p99 of each window
from the probe's histogram (`bench.model_call.ScrapedProbe`), with the 95% interval its calls
allow (`demo.tail`), and the bench client's p99 of the same calls (the `http_client` point,
timed from the scheduled arrival). Every window is measured exactly like every other, so the
ratio of consecutive windows is what chance and the machine alone do to a live/baseline ratio.
`--sink` samples every request to a drift service, as the demo's servers do.

`--clients` instead holds the two clients against each other at the `http_client` point: the
bench's fixed-rate loop (the baseline's) and the demo's traffic generator (the live figure's),
in alternating 10-s windows against the same server, each timed from the scheduled arrival,
their latencies pooled per client:

    python benchmarks/p99_aa.py --windows 6          # ~4 minutes; writes $OUT/p99_aa.json
    python benchmarks/p99_aa.py --windows 6 --sink   # the server as the demo runs it
    python benchmarks/p99_aa.py --rate 40 --calls 1500   # the demo before it ran at 200 req/s
    python benchmarks/p99_aa.py --clients --windows 5   # ~2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchwatch import services  # noqa: E402
from benchwatch.bench import backends, runner, suites  # noqa: E402
from benchwatch.bench.model_call import ScrapedProbe, read_every, window  # noqa: E402
from benchwatch.bench.stats import quantile  # noqa: E402
from benchwatch.demo import tail  # noqa: E402
from benchwatch.demo.parts import SCRAPE_INTERVAL_S  # noqa: E402
from benchwatch.demo.session import DemoConfig, bench_calls  # noqa: E402
from benchwatch.demo.traffic import Traffic  # noqa: E402


def clients(port: int, queries: list, windows: int, rate: float, workers: int) -> list[dict]:
    """Pooled client latencies (from the scheduled arrival) of the bench's loop and the demo's
    traffic generator, alternating 10-s windows against one server."""
    backend = backends.HttpBackend(f"http://127.0.0.1:{port}")
    pooled: dict[str, list[float]] = {"bench loop": [], "demo traffic": []}
    for i in range(windows):
        lat, _, _ = runner.run_server_step(backend, queries, rate, int(rate * 10), workers,
                                           100 + i)
        pooled["bench loop"].extend(lat.tolist())
        traffic = Traffic("127.0.0.1", port, rate_qps=rate, drift_at_s=60.0, duration_s=10.0,
                          workers=workers, seed=i)
        traffic.start()
        while traffic.alive():
            traffic.status()  # as the CLI writes its status file, every 0.5 s
            time.sleep(0.5)
        pooled["demo traffic"].extend(traffic.stats().latencies_s)
    backend.close()
    rows = []
    for name, values in pooled.items():
        v = np.asarray(values)
        rows.append({"client": name, "calls": int(v.size),
                     **{f"p{q * 100:g}_s": quantile(v, q) for q in (0.5, 0.9, 0.99)},
                     "p99_interval_s": tail.of_values(0.99, v)})
        print(f"{name:>13}: {v.size} calls, p50 {rows[-1]['p50_s'] * 1e3:.3f} ms, p90 "
              f"{rows[-1]['p90_s'] * 1e3:.3f} ms, p99 {rows[-1]['p99_s'] * 1e3:.3f} ms")
    print(f"demo traffic / bench loop p99: {rows[1]['p99_s'] / rows[0]['p99_s']:.2f}x "
          f"(load average {os.getloadavg()[0]:.1f})")
    return rows


def same_windows(port: int, metrics: str, queries: list, windows: int, calls: int,
                 rate: float, workers: int) -> list[dict]:
    """The model-call p99 of `windows` identical windows, each against the one before."""
    backend = backends.HttpBackend(f"http://127.0.0.1:{port}")
    meter = ScrapedProbe([metrics], "digits")
    print(f"{'window':>6} {'calls':>6} {'p99 ms':>8} {'95% interval ms':>18} "
          f"{'/ previous':>11} {'range':>12} {'client p99 ms':>14} {'/ previous':>11} "
          f"{'load':>5}")
    rows: list[dict] = []
    prev = None
    for i in range(windows):
        with read_every(metrics, SCRAPE_INTERVAL_S):
            before = meter.read()
            lat, _, _ = runner.run_server_step(backend, queries, rate, calls, workers, 100 + i)
            w = window(before, meter.read())
        assert w is not None
        p99, client = w.quantiles()["latency_p99_s"], quantile(lat, 0.99)
        iv = tail.of_buckets(0.99, w.buckets)
        assert iv is not None
        cmp = tail.Comparison.of(p99, iv, prev[0], prev[1]) if prev else None
        client_ratio: float | None = client / prev[2] if prev else None
        load = os.getloadavg()[0]
        rows.append({"window": i, "calls": w.calls, "p99_s": p99, "interval_s": iv,
                     "ratio_to_previous": cmp.ratio if cmp else None,
                     "range": [cmp.low, cmp.high] if cmp else None,
                     "client_p99_s": client, "client_ratio_to_previous": client_ratio,
                     "load_1m": load})
        print(f"{i:>6} {w.calls:>6.0f} {p99 * 1e3:>8.3f} "
              f"{iv[0] * 1e3:>8.3f}-{iv[1] * 1e3:<9.3f} "
              f"{'' if cmp is None else f'{cmp.ratio:.2f}x':>11} "
              f"{'' if cmp is None else f'{cmp.low:.2f}-{cmp.high:.2f}':>12} "
              f"{client * 1e3:>14.3f} "
              f"{'' if client_ratio is None else f'{client_ratio:.2f}x':>11} {load:>5.1f}")
        prev = (p99, iv, client)
    backend.close()
    for point, key in (("model call", "ratio_to_previous"),
                       ("HTTP client", "client_ratio_to_previous")):
        ratios = [r[key] for r in rows if r[key]]
        if ratios:
            inside = sum(1 / tail.BAND <= r <= tail.BAND for r in ratios)
            print(f"{point}: consecutive windows within {tail.BAND:g}x of each other: {inside} "
                  f"of {len(ratios)} (ratios {min(ratios):.2f}-{max(ratios):.2f})")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--windows", type=int, default=6)
    demo = DemoConfig()
    p.add_argument("--calls", type=int, default=bench_calls(demo),
                   help="calls per window (default: the demo's, %(default)s)")
    p.add_argument("--rate", type=float, default=demo.rate,
                   help="requests/s (default: the demo's, %(default)s)")
    p.add_argument("--clients", action="store_true",
                   help="the bench's client loop against the demo's traffic generator")
    p.add_argument("--sink", action="store_true",
                   help="sample every request to a drift service, as the demo's servers do")
    a = p.parse_args()
    port, metrics_port = services.free_port(), services.free_port()
    children: list[subprocess.Popen[bytes]] = []
    sink: list[str] = []
    spool = Path(tempfile.mkdtemp(prefix="p99-aa-"))  # the drift service's, with --sink
    if a.sink:
        ingest = services.free_port()
        children.append(subprocess.Popen(
            [sys.executable, "-m", "benchwatch", "drift", "serve", "--baselines", str(spool),
             "--state", str(spool / "spool.sqlite"), "--port", str(services.free_port()),
             "--ingest-port", str(ingest)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        services.wait_http(f"http://127.0.0.1:{ingest}/healthz", 90, children[-1])
        sink = ["--sink", f"http://127.0.0.1:{ingest}/v1/samples", "--sample-rate", "1.0"]
    server = subprocess.Popen(
        [sys.executable, "-m", "benchwatch.example.server", "--port", str(port),
         "--metrics-port", str(metrics_port), "--log-level", "WARNING", *sink],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children.append(server)
    try:
        services.wait_http(f"http://127.0.0.1:{port}/healthz", 90, server)
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        services.wait_http(metrics, 90, server)
        queries = runner._rows(suites.load_suite("digits"))
        workers = runner.RunSettings.server_workers
        warm = backends.HttpBackend(f"http://127.0.0.1:{port}")
        runner.run_server_step(warm, queries, a.rate, 200, workers, 1)
        warm.close()
        rows = clients(port, queries, a.windows, a.rate, workers) if a.clients else \
            same_windows(port, metrics, queries, a.windows, a.calls, a.rate, workers)
    finally:
        for child in reversed(children):
            child.terminate()
            child.wait(10)
        shutil.rmtree(spool, ignore_errors=True)
    out = Path(os.environ.get("OUT", "."))
    (out / ("p99_clients.json" if a.clients else "p99_aa.json")).write_text(
        json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
