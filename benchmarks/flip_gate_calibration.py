"""The replay's flip-rate gate, calibrated by seeded simulation: how often it FAILs a canary
exactly as stable as the primary, PASSes/FAILs one exactly at the margin, and catches a less
stable one, paired (the same perturbed queries to both arms) and against a baseline figure.

    .venv/bin/python benchmarks/flip_gate_calibration.py [--trials 2000] [--seed 0]

The primary flips on 0.5% of the perturbed queries (the example model: 11 of 2 245); a canary
at the margin flips on those plus 1% more (margin 0.01); n = 2 245 perturbed queries (449 rows
x 5 draws), alpha = 0.05, as `benchwatch replay` runs it on the digits suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch.bench.judge import (  # noqa: E402
    FAIL,
    PASS,
    Arm,
    JudgeSettings,
    decide,
    judge_flip_rate,
)

CASES = {"identical": 0.0, "at the margin (+0.01)": 0.01, "+0.03": 0.03}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=2245)
    p.add_argument("--base", type=float, default=0.005)
    a = p.parse_args()
    s = JudgeSettings()
    rng = np.random.default_rng(a.seed)
    print(f"flip-rate gate: {a.trials} trials, n = {a.n}, primary flip rate {a.base}, "
          f"margin {s.flip_margin}, alpha {s.alpha}")
    print(f"{'canary':24} {'reference':10} {'FAIL':>6} {'PASS':>6} {'INCONCL':>8}")
    for name, extra in CASES.items():
        for ref_kind in ("primary", "baseline"):
            outcomes = {FAIL: 0, PASS: 0}
            for _ in range(a.trials):
                ref = rng.random(a.n) < a.base
                canary = ref | (rng.random(a.n) < extra / (1 - a.base)) if extra else ref.copy()
                if extra == 0.0:  # as stable, not the same flips: an independent draw
                    canary = rng.random(a.n) < a.base
                reference = (Arm("p", flipped=ref) if ref_kind == "primary"
                             else Arm("b", figures={"flip_rate": a.base}))
                m = decide([judge_flip_rate(Arm("c", flipped=canary), reference, s)], s).metrics[0]
                if m.outcome in outcomes:
                    outcomes[m.outcome] += 1
            f, pa = outcomes[FAIL] / a.trials, outcomes[PASS] / a.trials
            print(f"{name:24} {ref_kind:10} {f:6.3f} {pa:6.3f} {1 - f - pa:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
