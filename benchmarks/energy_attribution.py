"""Joules per inference: the old whole-interval split against the above-idle split, in one run.

A FAKE GPU (there is none needed here) draws 100 W idle and +200 W while a call runs; 5 s idle,
then 20 s of 10 ms calls at a 50% and at a 25% duty cycle, with a `devices="cpu"` model
running in the gaps. Time is virtual (tests/support/energy_scenario.py): the real `@probe`,
`busy_ns` and `EnergySampler.step()` every 0.25 s, two samplers reading the same counter at
the same instants:

- whole interval (the old attribution): idle power 0, so each interval's whole energy, idle
  draw included, goes to the calls in flight;
- above idle (now): the idle power learned from the idle phase, only the energy above it.

The truth per call is 200 W x 10 ms = 2 J. Runs in about a second:

    python benchmarks/energy_attribution.py      # prints the table, writes $OUT/energy_attribution.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tests.support.energy_scenario import run_scenario  # noqa: E402

SAMPLERS = {"whole_interval": {"*": 0.0}, "above_idle": None}


def main() -> int:
    rows = []
    print(f"{'duty':>5} {'calls':>6} {'truth J/call':>13} {'whole-interval':>15} {'above-idle':>11} "
          f"{'(attr+idle)/counter':>20} {'idle W learned':>15} {'cpu model GPU J':>16}")
    for duty in (0.5, 0.25):
        r = run_scenario(duty, samplers=SAMPLERS)
        row = {
            "duty": duty, "calls": r.calls, "truth_j_per_call": r.true_j_per_call,
            "whole_interval_j_per_call": r.j_per_call["whole_interval"],
            "above_idle_j_per_call": r.j_per_call["above_idle"],
            "whole_interval_over_truth": r.j_per_call["whole_interval"] / r.true_j_per_call,
            "above_idle_over_truth": r.j_per_call["above_idle"] / r.true_j_per_call,
            "conservation": {name: (r.attributed_j[name] + r.idle_j[name]) / r.counter_j for name in SAMPLERS},
            "idle_j": r.idle_j, "device_j": r.device_j, "counter_j": r.counter_j,
            "idle_w_learned": r.idle_power["above_idle"].watts(),
            "cpu_model_gpu_j": r.cpu_model_gpu_j["above_idle"],
        }
        rows.append(row)
        print(f"{duty:5.0%} {r.calls:6d} {r.true_j_per_call:13.3f} "
              f"{row['whole_interval_j_per_call']:9.3f} x{row['whole_interval_over_truth']:<4.2f} "
              f"{row['above_idle_j_per_call']:6.3f} x{row['above_idle_over_truth']:<4.2f}"
              f"{row['conservation']['above_idle']:16.4f} {row['idle_w_learned']:15.1f} "
              f"{row['cpu_model_gpu_j']:16.1f}")
    old = rows[1]["whole_interval_j_per_call"] / rows[0]["whole_interval_j_per_call"]
    new = rows[1]["above_idle_j_per_call"] / rows[0]["above_idle_j_per_call"]
    billed = [r["whole_interval_j_per_call"] - r["truth_j_per_call"] for r in rows]
    print(f"traffic halved (50% -> 25%): whole-interval J/call x{old:.2f} (idle draw billed per call "
          f"{billed[0]:.2f} -> {billed[1]:.2f} J, x{billed[1] / billed[0]:.2f}), above-idle x{new:.2f}")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "energy_attribution.json").write_text(json.dumps(rows, indent=2))
    ok = all(abs(r["above_idle_over_truth"] - 1) <= 0.05 and
             abs(r["conservation"]["above_idle"] - 1) <= 0.01 and r["cpu_model_gpu_j"] == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
