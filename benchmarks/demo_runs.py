"""`benchwatch demo` N times in a row, each run's like-for-like figures in one line.

What the main job promises, run after run: no alert before the drift, the drift alert within
60 s, live/baseline p99 before the drift within 1.2x at each measurement point.

    .venv/bin/python benchmarks/demo_runs.py [--runs 3] [--duration 120] [-- demo options]

Each run's directory (summary.json, logs, report) is kept under $OUT (default ./runs/demo-runs);
$OUT/demo_runs.json holds every line. The load average is printed per run: the p99 before the
drift moves with whatever else the machine runs (benchmarks/p99_aa.py measures that floor).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BAND = 1.2  # benchwatch.demo.tail.BAND, not imported: this script only needs the CLI installed


def one_run(workdir: Path, duration: float, extra: list[str]) -> dict:
    t0 = time.monotonic()
    with (workdir.parent / f"{workdir.name}.log").open("w") as log:
        code = subprocess.call([sys.executable, "-m", "benchwatch", "demo", "--plain",
                                "--duration", f"{duration:g}", "-o", str(workdir), *extra],
                               stdout=log, stderr=subprocess.STDOUT)
    s = json.loads((workdir / "summary.json").read_text())
    began = s.get("drift_started_at")
    alerts = {name: round(at - began, 1) for name, at in s.get("other_alerts", {}).items()} \
        if began else {}
    page = round(s["alert_fired_at"] - began, 1) if began and s.get("alert_fired_at") else None
    p99 = {point: {"ratio": f["p99_ratio"], "range": f["p99_ratio_range"],
                   "live_calls": f["live_calls"], "baseline_calls": f["baseline_calls"],
                   "within": f["p99_ratio"] is not None and 1 / BAND <= f["p99_ratio"] <= BAND}
           for point, f in (s.get("before_drift") or {}).items()}
    return {"run": workdir.name, "exit": code, "seconds": round(time.monotonic() - t0),
            "page_after_drift_s": page, "alerts_before_drift": [a for a, t in alerts.items() if t < 0],
            "other_alerts_after_drift_s": {a: t for a, t in alerts.items() if t >= 0},
            "p99": p99, "load_1m": round(os.getloadavg()[0], 1)}


def line(r: dict) -> str:
    points = "; ".join(
        f"{point} {f['ratio']:.2f}x [{f['range'][0]:.2f}-{f['range'][1]:.2f}] "
        f"({f['live_calls']}/{f['baseline_calls']} calls)" for point, f in r["p99"].items()
        if f["ratio"] is not None)
    return (f"{r['run']}: exit {r['exit']}, page {r['page_after_drift_s']} s after the drift, "
            f"before it {r['alerts_before_drift'] or 'none'}, after it "
            f"{r['other_alerts_after_drift_s'] or 'none'}; p99 live/baseline {points}; "
            f"load {r['load_1m']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("demo", nargs="*", help="more `benchwatch demo` options, after --")
    a = p.parse_args()
    out = Path(os.environ.get("OUT", "runs/demo-runs"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(1, a.runs + 1):
        rows.append(one_run(out / f"run-{i}", a.duration, a.demo))
        print(line(rows[-1]), flush=True)
        (out / "demo_runs.json").write_text(json.dumps(rows, indent=2))
    for point in sorted({pt for r in rows for pt in r["p99"]}):
        within = sum(r["p99"].get(point, {}).get("within", False) for r in rows)
        print(f"{point}: live/baseline p99 within {BAND:g}x in {within} of {len(rows)}")
    quiet = sum(not r["alerts_before_drift"] for r in rows)
    paged = sum(r["page_after_drift_s"] is not None and r["page_after_drift_s"] <= 60 for r in rows)
    print(f"no alert before the drift in {quiet} of {len(rows)}; paged within 60 s in {paged} of "
          f"{len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
