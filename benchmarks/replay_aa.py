"""A/A soundness of `benchwatch replay`: N replays of two identical servers (an A/A test) and
of a canary that is 5 ms slower on every request, counting PASS / FAIL / INCONCLUSIVE.

    .venv/bin/python benchmarks/replay_aa.py [--runs 10] [--server example|uvicorn] [--queries N]
                                             [--one-server]

`example`: two `python -m benchwatch.example.server` processes (raw asyncio), the canary with
`--delay-ms 5`. `uvicorn`: the same model behind uvicorn (2 workers) + a minimal ASGI app with
`probes.ProbeMiddleware`, the way a FastAPI service is usually run; the canary sleeps 5 ms.
Every replay runs with the CLI's defaults (query count, warm-up, margins) and a new seed.
A third case re-judges each A/A replay's latencies with the canary's multiplied by 1.5 (a
canary 1.5x slower on every request, on real measured latencies), at the default settings.
The target: PASS in at least 9 of 10 A/A replays; both slower canaries FAIL every time.
The load average is printed per case (min-max over its replays): on a host whose load exceeds
its cores, identical server processes take turns being starved, and their tails differ.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from example_server import asgi_app  # noqa: E402  (this folder: the same ASGI app)

from benchwatch.bench.judge import Arm, JudgeSettings, judge  # noqa: E402
from benchwatch.cli import main as cli  # noqa: E402
from benchwatch.services import free_port, wait_http  # noqa: E402


def _uvicorn_factory():  # type: ignore[no-untyped-def]
    return asgi_app(float(os.environ.get("AA_DELAY_MS", "0")))


def start(kind: str, delay_ms: float) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    if kind == "example":
        cmd = [sys.executable, "-m", "benchwatch.example.server", "--port", str(port),
               "--log-level", "WARNING", "--delay-ms", str(delay_ms)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "replay_aa:_uvicorn_factory",
               "--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1", "--port",
               str(port), "--workers", "2", "--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "AA_DELAY_MS": str(delay_ms), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz" if kind == "example" else url + "/info", 60.0, proc)
    return url, proc


def replay_once(canary: str, primary: str, seed: int, queries: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        args = ["replay", "--canary", canary, "--primary", primary, "-o", d, "--no-progress",
                "--seed", str(seed), "--metrics-hold-s", "0"]
        if queries:
            args += ["--queries", str(queries)]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            cli(args)
        wall = time.perf_counter() - t0
        (out,) = Path(d).glob("replay-*")
        doc = json.loads((out / "verdict.json").read_text())
        with np.load(out / "latencies.npz") as lat:
            latencies = {k: lat[k] for k in lat.files}
    return summary(doc["verdict"], wall, max(load, os.getloadavg()[0]), latencies)


def summary(v: dict[str, Any], wall: float, load: float,
            latencies: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    rows = {m["metric"]: m for m in v["metrics"]}
    out: dict[str, Any] = {"outcome": v["outcome"], "reason": v["reason"], "wall_s": wall,
                           "load": load, "latencies": latencies,
                           "empty_why": [m["metric"] for m in v["metrics"] if not m.get("reason")]}
    for q in ("p50", "p90", "p99"):
        out[f"{q}_ratio"] = rows.get(f"latency_{q}", {}).get("estimate")
        out[f"{q}_upper"] = rows.get(f"latency_{q}", {}).get("upper")
    return out


def scaled(run: dict[str, Any], factor: float) -> dict[str, Any]:
    """An A/A replay's latencies judged again with the canary's times `factor` (defaults)."""
    lat = run["latencies"]
    v = judge(Arm("canary", lat["canary"] * factor), Arm("primary", lat["primary"]),
              JudgeSettings()).to_dict()
    return summary(v, 0.0, run["load"])


def span(rs: list[dict[str, Any]], key: str, digits: int = 3) -> str:
    values = sorted(float(r[key]) for r in rs if r[key] is not None)
    return f"{values[0]:.{digits}f}–{values[-1]:.{digits}f}" if values else "–"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--server", choices=("example", "uvicorn"), default="example")
    p.add_argument("--queries", type=int, default=None, help="default: the CLI's")
    p.add_argument("--slow-ms", type=float, default=5.0)
    p.add_argument("--one-server", action="store_true",
                   help="A/A against one server process for both arms: "
                        "the client and judge alone, without two processes' scheduling")
    p.add_argument("--json", help="also write the per-run results here")
    a = p.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        primary, pp = start(a.server, 0.0)
        twin, tp = start(a.server, 0.0)
        slow, sp = start(a.server, a.slow_ms)
        procs += [pp, tp, sp]
        slower = f"{a.slow_ms:g} ms slower"
        runs: dict[str, list[dict[str, Any]]] = {"A/A": [], slower: [], "x1.5 slower": []}
        for i in range(a.runs):  # alternate, so machine load hits both cases alike
            runs["A/A"].append(replay_once(primary if a.one_server else twin, primary, i,
                                           a.queries))
            runs["x1.5 slower"].append(scaled(runs["A/A"][-1], 1.5))
            runs[slower].append(replay_once(slow, primary, i, a.queries))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    margins = ", ".join(f"p{q * 100:g} x{m:g}" for q, m in JudgeSettings().latency_margins)
    print(f"{a.server} servers{' (A/A on one server)' if a.one_server else ''}, {a.runs} "
          f"replays per case, {os.cpu_count()} CPUs, default margins {margins}")
    for case, rs in runs.items():
        counts = Counter(str(r["outcome"]) for r in rs)
        spread = "; ".join(f"{q} ratio {span(rs, f'{q}_ratio')} (upper {span(rs, f'{q}_upper')})"
                           for q in ("p50", "p90", "p99"))
        walls = sorted(float(r["wall_s"]) for r in rs)
        empty = sum(1 for r in rs if r["empty_why"])
        print(f"{case:>14}: PASS {counts['pass']}, FAIL {counts['fail']}, INCONCLUSIVE "
              f"{counts['inconclusive']}, error {counts['error']}; load average "
              f"{span(rs, 'load', 1)}; {spread}; median {walls[len(walls) // 2]:.1f} s a "
              f"replay; rows with an empty why: {empty}")
        for r in rs:
            if r["outcome"] != ("pass" if case == "A/A" else "fail"):
                print(f"{'':>16}{r['outcome']}: {r['reason']}")
    if a.json:
        Path(a.json).write_text(json.dumps(
            {case: [{k: v for k, v in r.items() if k != "latencies"} for r in rs]
             for case, rs in runs.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
