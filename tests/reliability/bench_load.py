"""Side by side: requests/s the example server reaches without a probe, with the probe, with the
probe exporting, and with every request sampled to a collector — same load generator, same run.

    .venv/bin/python tests/reliability/bench_load.py [--seconds 8] [--repeats 3]

Each configuration runs `--repeats` times (interleaved, so drift in the machine's load hits all
alike); the table shows medians and the ratio to "no probe". The "no probe" server is the same
server with `probes.probe` replaced by the identity before it starts (a benchmark shim only).
Note: on a shared 2-core machine the load generator and the server compete for the CPUs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchwatch.services import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
LOADGEN = Path(__file__).with_name("loadgen.py")
NO_PROBE_SHIM = ("import sys, probes; probes.probe = lambda *a, **k: (lambda f: f); "
                 "from benchwatch.example.server import main; sys.exit(main(sys.argv[1:]))")


def run_one(config: str, seconds: float, collector_url: str, rate: float) -> dict[str, object]:
    port = free_port()
    args = ["--port", str(port), "--log-level", "WARNING"]
    if config == "no probe":
        cmd = [sys.executable, "-c", NO_PROBE_SHIM, *args]
    else:
        cmd = [sys.executable, "-m", "benchwatch.example.server", *args]
        if config in ("probe + Prometheus endpoint", "probe + every request sampled"):
            cmd += ["--metrics-port", str(free_port())]
        if config == "probe + every request sampled":
            cmd += ["--sink", collector_url, "--sample-rate", "1.0"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        out = subprocess.run([sys.executable, str(LOADGEN), "--port", str(port), "--duration",
                              str(seconds), "--rate", str(rate)], cwd=ROOT, capture_output=True, text=True,
                             timeout=seconds + 60, check=True).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(15)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rate", type=float, default=10_000.0,
                   help="target req/s (raise it to measure capacity instead)")
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from collector import Collector, WindowStore
    from collector.http_server import ingest_server

    store = WindowStore(None, max_sample_ids=5_000_000)
    ingest = ingest_server(Collector(store), port=0).start()
    configs = ["no probe", "probe, not configured", "probe + Prometheus endpoint",
               "probe + every request sampled"]
    rates: dict[str, list[float]] = {c: [] for c in configs}
    errors: dict[str, int] = dict.fromkeys(configs, 0)
    try:
        for _ in range(a.repeats):
            for c in configs:
                r = run_one(c, a.seconds, f"{ingest.url}/v1/samples", a.rate)
                rates[c].append(float(r["rate_reached"]))  # type: ignore[arg-type]
                errors[c] += int(r["sent"]) - int(r["status"].get("200", 0))  # type: ignore[union-attr,call-overload]
    finally:
        ingest.stop()
    base = statistics.median(rates["no probe"])
    print(f"\nexample server under load (target {a.rate:.0f} req/s, {a.seconds:g} s x {a.repeats}, "
          "medians; 2 shared cores)")
    print(f"{'configuration':34} {'req/s':>9} {'vs no probe':>12} {'non-200':>8}  runs")
    for c in configs:
        m = statistics.median(rates[c])
        print(f"{c:34} {m:9.0f} {m / base:11.2f}x {errors[c]:8d}  "
              + " ".join(f"{x:.0f}" for x in rates[c]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
