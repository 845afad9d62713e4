"""A/A soundness of `benchwatch replay`: N replays of two identical servers (an A/A test) and
of a canary that is 5 ms slower on every request, counting PASS / FAIL / INCONCLUSIVE.

    .venv/bin/python benchmarks/replay_aa.py [--runs 10] [--server example|uvicorn] [--queries N]
                                             [--one-server]

`example`: two `python -m benchwatch.example.server` processes (raw asyncio), the canary with
`--delay-ms 5`. `uvicorn`: the same model behind uvicorn (2 workers) + a minimal ASGI app with
`probes.ProbeMiddleware`, the way a FastAPI service is usually run; the canary sleeps 5 ms.
Every replay runs with the CLI's defaults (query count, warm-up, margins) and a new seed.
The target: PASS in at least 9 of 10 A/A replays; the slower canary FAILs every time.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from example_server import asgi_app  # noqa: E402  (this folder: the same ASGI app)

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


def replay_once(canary: str, primary: str, seed: int, queries: int | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        args = ["replay", "--canary", canary, "--primary", primary, "-o", d, "--no-progress",
                "--seed", str(seed), "--metrics-hold-s", "0"]
        if queries:
            args += ["--queries", str(queries)]
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            cli(args)
        wall = time.perf_counter() - t0
        (out,) = Path(d).glob("replay-*")
        doc = json.loads((out / "verdict.json").read_text())
    v = doc["verdict"]
    p50 = next((m for m in v["metrics"] if m["metric"] == "latency_p50"), {})
    p99 = next((m for m in v["metrics"] if m["metric"] == "latency_p99"), {})
    return {"outcome": v["outcome"], "reason": v["reason"], "wall_s": wall,
            "p50_ratio": p50.get("estimate"), "p99_ratio": p99.get("estimate"),
            "p99_upper": p99.get("upper"),
            "empty_why": [m["metric"] for m in v["metrics"] if not m.get("reason")]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--server", choices=("example", "uvicorn"), default="example")
    p.add_argument("--queries", type=int, default=None, help="default: the CLI's")
    p.add_argument("--slow-ms", type=float, default=5.0)
    p.add_argument("--one-server", action="store_true",
                   help="A/A against one server process for both arms (what the test does): "
                        "the client and judge alone, without two processes' scheduling")
    p.add_argument("--json", help="also write the per-run results here")
    a = p.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        primary, pp = start(a.server, 0.0)
        twin, tp = start(a.server, 0.0)
        slow, sp = start(a.server, a.slow_ms)
        procs += [pp, tp, sp]
        runs: dict[str, list[dict[str, object]]] = {"A/A": [], f"{a.slow_ms:g} ms slower": []}
        for i in range(a.runs):  # alternate, so machine load hits both cases alike
            runs["A/A"].append(replay_once(primary if a.one_server else twin, primary, i,
                                           a.queries))
            runs[f"{a.slow_ms:g} ms slower"].append(replay_once(slow, primary, i, a.queries))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    print(f"{a.server} servers{' (A/A on one server)' if a.one_server else ''}, {a.runs} "
          f"replays per case, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for case, rs in runs.items():
        counts = Counter(str(r["outcome"]) for r in rs)
        p50s = sorted(float(r["p50_ratio"]) for r in rs if r["p50_ratio"] is not None)  # type: ignore[arg-type]
        p99s = sorted(float(r["p99_ratio"]) for r in rs if r["p99_ratio"] is not None)  # type: ignore[arg-type]
        walls = sorted(float(r["wall_s"]) for r in rs)  # type: ignore[arg-type]
        empty = sum(1 for r in rs if r["empty_why"])
        print(f"{case:>14}: PASS {counts['pass']}, FAIL {counts['fail']}, INCONCLUSIVE "
              f"{counts['inconclusive']}, error {counts['error']}; p50 ratio "
              f"{p50s[0]:.3f}–{p50s[-1]:.3f}, p99 ratio {p99s[0]:.3f}–{p99s[-1]:.3f}; "
              f"median {walls[len(walls) // 2]:.1f} s a replay; rows with an empty why: {empty}")
        for r in rs:
            if r["outcome"] != ("pass" if case == "A/A" else "fail"):
                print(f"{'':>16}{r['outcome']}: {r['reason']}")
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
