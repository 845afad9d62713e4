"""Verdict calibration by seeded simulation: how often the judge FAILs identical canaries,
PASSes/FAILs canaries exactly at the margin, and catches a slower tail.

    .venv/bin/python benchmarks/judge_calibration.py [--trials 400] [--seed 0]

Latencies are lognormal (σ = 0.35, median 200 µs); the judge runs with α = 0.05 and the
default latency margins (p50 ×1.10, p90 ×1.25, p99 ×1.5) with Holm across them (as
`benchwatch replay` does). "At the p50 margin": every request 10% slower; "at the p99 margin":
the slowest 5% 50% slower (p50 and p90 untouched).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch.bench.judge import Arm, JudgeSettings, judge  # noqa: E402

CASES = {
    "identical": {},
    "all 10% slower (p50 margin)": {"scale": 1.10},
    "slowest 5% +50% (p99 margin)": {"tail": 1.5},
    "slowest 5% twice as slow": {"tail": 2.0},
    "all 20% slower": {"scale": 1.20},
}


def sample(rng: np.random.Generator, n: int, scale: float = 1.0, tail: float = 1.0) -> np.ndarray:
    x = rng.lognormal(np.log(2e-4), 0.35, n) * scale
    return np.where(x > np.quantile(x, 0.95), x * tail, x) if tail != 1.0 else x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sizes", default="700,2000,5000")
    p.add_argument("--json")
    a = p.parse_args()
    out = []
    print(f"{'case':<30}{'n/arm':>7}{'FAIL':>8}{'PASS':>8}{'INCONCL':>9}")
    for case, kw in CASES.items():
        for n in (int(s) for s in a.sizes.split(",")):
            rng = np.random.default_rng(a.seed)
            counts = {"pass": 0, "fail": 0, "inconclusive": 0}
            for t in range(a.trials):
                s = JudgeSettings(bootstrap_draws=2000, drift_features=(), seed=t)
                v = judge(Arm("c", sample(rng, n, **kw)), Arm("p", sample(rng, n)), s)
                counts[v.outcome] += 1
            rates = {k: c / a.trials for k, c in counts.items()}
            out.append({"case": case, "n": n, **rates})
            print(f"{case:<30}{n:>7}{rates['fail']:>8.3f}{rates['pass']:>8.3f}"
                  f"{rates['inconclusive']:>9.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
