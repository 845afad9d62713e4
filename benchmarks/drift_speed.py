"""Drift speed, memory and streaming calibration: benchwatch vs scipy (and Evidently) on the
same data in the same run. Prints tables; `--json FILE` also writes the figures.

    .venv/bin/python benchmarks/drift_speed.py            # ~1-2 min (+ Evidently's install once)
    .venv/bin/python benchmarks/drift_speed.py --quick    # fewer repeats / streams
    .venv/bin/python benchmarks/drift_speed.py --no-evidently

Evidently runs in its own throwaway virtualenv under /tmp (it is not a benchwatch dependency);
if it cannot be installed the rows are skipped with the reason. Alibi Detect is not run and none
of its code is used: it is under the Business Source Licence (ideas only).

Timings are medians of repeats on whatever machine runs this; a shared 2-core box with other
jobs running is noisy, so read the ratios more than the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from drift import NumericReference, compare
from drift.features import compare_features
from drift.sketch import BinSketch
from drift.streaming import StreamDetector

EVIDENTLY_VENV = Path(tempfile.gettempdir()) / "benchwatch-evidently-venv"
EVIDENTLY_PKGS = ["evidently", "pandas<3"]  # evidently 0.7 breaks on pandas 3


def timed_ms(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(median, fastest) wall time in ms; the fastest repeat is the least disturbed by other
    jobs on a shared machine."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts), 1e3 * min(ts)


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    return timed_ms(fn, repeats)[0]


def scipy_equivalent(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """What our default test computes, done with scipy: KS p-value and W1 / reference std."""
    p = stats.ks_2samp(ref, cur).pvalue
    w = stats.wasserstein_distance(ref, cur) / ref.std()
    return float(p), float(w)


# ---- Evidently in its own venv --------------------------------------------------------------
EVIDENTLY_SCRIPT = textwrap.dedent("""
    import json, statistics, sys, time, warnings
    import numpy as np, pandas as pd
    warnings.filterwarnings("ignore")
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset
    d = np.load(sys.argv[1]); repeats = int(sys.argv[2]); out = {}
    def med(fn):
        fn(); ts = []
        for _ in range(repeats):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        return 1e3 * statistics.median(ts)
    ref = pd.DataFrame({"x": d["ref"]})
    for name in ("small", "large"):
        cur = pd.DataFrame({"x": d[name]})
        out[name] = med(lambda: Report([ValueDrift(column="x")]).run(cur, ref))
        snap = Report([ValueDrift(column="x")]).run(cur, ref)
        out[name + "_value"] = float(snap.dict()["metrics"][0]["value"])
    wref = pd.DataFrame(d["wide_ref"], columns=[f"f{i:02d}" for i in range(d["wide_ref"].shape[1])])
    wcur = pd.DataFrame(d["wide_cur"], columns=wref.columns)
    out["wide"] = med(lambda: Report([DataDriftPreset()]).run(wcur, wref))
    print(json.dumps(out))
""")


def evidently_python(install: bool) -> tuple[Path | None, str]:
    py = EVIDENTLY_VENV / "bin" / "python"
    if py.exists():
        return py, ""
    if not install:
        return None, f"no venv at {EVIDENTLY_VENV} (run without --no-install to create it)"
    print(f"installing Evidently into {EVIDENTLY_VENV} (once) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True,
                       capture_output=True, timeout=300)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *EVIDENTLY_PKGS], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        return None, f"install failed: {e} {err.decode(errors='replace')[-300:]}"
    return py, ""


def run_evidently(data: dict[str, np.ndarray], repeats: int, install: bool) -> tuple[dict[str, float] | None, str]:
    py, why = evidently_python(install)
    if py is None:
        return None, why
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, **data)
        script = Path(tmp) / "ev.py"
        script.write_text(EVIDENTLY_SCRIPT)
        try:
            out = subprocess.run([str(py), str(script), str(npz), str(repeats)], check=True,
                                 capture_output=True, text=True, timeout=900)
        except subprocess.SubprocessError as e:
            return None, f"Evidently run failed: {getattr(e, 'stderr', '')[-400:]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), ""


# ---- streaming ------------------------------------------------------------------------------
def run_length(det: StreamDetector, draw: Callable[[int], np.ndarray], cap: int,
               chunk: int = 256) -> int:
    det.reset()
    seen = 0
    while seen < cap:
        state = det.update(draw(chunk))
        if state.since_index is not None:
            return state.since_index + 1
        seen += chunk
    return cap


def streaming_table(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    """Mean run length to a false alarm, averaged over fresh references (a finite reference's
    own sampling error moves the run length of the streams judged against it)."""
    rows = []
    refs = 5 if quick else 10
    streams = 30 if quick else 60
    for ert in (500, 2000):
        for m in (5000, 50_000):
            per_ref = []
            t = time.perf_counter()
            for _ in range(refs):
                det = StreamDetector(rng.normal(size=m), ert=ert, clear_after=10**9)
                per_ref.append(float(np.mean([
                    run_length(det, lambda n: rng.normal(size=n), 40 * ert)
                    for _ in range(streams)])))
            mean = float(np.mean(per_ref))
            rows.append({"ert": ert, "reference_n": m, "references": refs,
                         "streams": refs * streams, "mean_run_length": mean, "ratio": mean / ert,
                         "per_reference_min_ratio": min(per_ref) / ert,
                         "per_reference_max_ratio": max(per_ref) / ert,
                         "within_25pct": abs(mean / ert - 1) <= 0.25,
                         "seconds": time.perf_counter() - t})
    return rows


def delay_table(rng: np.random.Generator, quick: bool, ert: int = 2000) -> list[dict[str, Any]]:
    det = StreamDetector(rng.normal(size=20_000), ert=ert, clear_after=10**9)
    rows = []
    for shift in (0.1, 0.25, 0.5, 1.0):
        d = [run_length(det, lambda n, s=shift: rng.normal(s, 1.0, n), 40 * ert, chunk=64)
             for _ in range(60 if quick else 150)]
        rows.append({"ert": ert, "shift_sigma": shift, "mean_delay": float(np.mean(d)),
                     "median_delay": float(np.median(d))})
    return rows


def defaults_table(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    """The default numeric test at both ends: alarm rates over seeded simulations."""
    trials = 200 if quick else 500
    rows = []
    for label, n, shift, want in (
        ("no drift, n=1 000 vs 5 000 (false alarms)", 1000, 0.0, "<= 0.05"),
        ("0.25 sigma shift, n=1 000 vs 5 000 (power)", 1000, 0.25, ">= 0.95"),
        ("0.02 sigma shift, n=200 000 vs 5 000 (irrelevant)", 200_000, 0.02, "0 alarms"),
    ):
        t = trials if n < 10_000 else trials // 10
        detected = significant = 0
        for _ in range(t):
            r = compare(NumericReference.from_values(rng.normal(size=5000)),
                        rng.normal(shift, 1.0, n))
            detected += r.detected
            significant += r.p_value is not None and r.p_value < 0.05
        rows.append({"case": label, "trials": t, "alarm_rate": detected / t,
                     "p_below_alpha_rate": significant / t, "target": want})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="use Evidently only if installed")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    reps = 7 if args.quick else 21
    rng = np.random.default_rng(2026)
    ref_raw = rng.normal(size=5000)
    small = rng.normal(0.25, 1.0, 1000)
    large = rng.normal(0.02, 1.0, 200_000)
    wide_ref = rng.normal(size=(5000, 20))
    wide_cur = rng.normal(size=(100_000, 20))
    wide_cur[:, 3] += 0.3
    ref = NumericReference.from_values(ref_raw)
    refs = {f"f{i:02d}": NumericReference.from_values(wide_ref[:, i]) for i in range(20)}
    cur_cols = {f"f{i:02d}": np.ascontiguousarray(wide_cur[:, i]) for i in range(20)}
    figures: dict[str, Any] = {"cpu_count": os.cpu_count(),
                               "loadavg_at_start": os.getloadavg()[0]}

    speed: list[dict[str, Any]] = []
    for case, cur, target in (("n=1 000 vs 5 000", small, 1.0), ("n=200 000 vs 5 000", large, 10.0)):
        ours, ours_best = timed_ms(lambda c=cur: compare(ref, c), reps)
        ours_raw = median_ms(lambda c=cur: compare(ref_raw, c), reps)
        sp = median_ms(lambda c=cur: scipy_equivalent(ref_raw, c), reps)
        ks = median_ms(lambda c=cur: stats.ks_2samp(ref_raw, c), reps)
        r = compare(ref, cur)
        p_sp, w_sp = scipy_equivalent(ref_raw, cur)
        speed.append({"case": case, "target_ms": target, "benchwatch_ms": ours,
                      "benchwatch_best_ms": ours_best,
                      "benchwatch_unprepared_ms": ours_raw, "scipy_ks+wasserstein_ms": sp,
                      "scipy_ks_only_ms": ks, "speedup_vs_scipy": sp / ours,
                      "detected": r.detected, "w_sigma": r.effect_size,
                      "w_sigma_abs_diff_vs_scipy": abs(r.effect_size - w_sp),
                      "p_value": r.p_value, "p_value_scipy": p_sp,
                      "meets_target": ours <= target})
    wide_ours, wide_best = timed_ms(lambda: compare_features(refs, cur_cols, missing=False), reps)
    wide_sp = median_ms(lambda: [scipy_equivalent(wide_ref[:, i], cur_cols[f"f{i:02d}"])
                                 for i in range(20)], max(5, reps // 3))
    wide_result = compare_features(refs, cur_cols, missing=False)
    speed.append({"case": "20 features x 100 000 rows", "target_ms": 50.0,
                  "benchwatch_ms": wide_ours, "benchwatch_best_ms": wide_best,
                  "scipy_ks+wasserstein_ms": wide_sp,
                  "speedup_vs_scipy": wide_sp / wide_ours, "drifted": list(wide_result.drifted),
                  "meets_target": wide_ours <= 50.0})
    # sketch path: update cost per 100k values, and a compare on the sketch
    sk = BinSketch(ref)
    upd = median_ms(lambda: sk.update(large[:100_000]), reps)
    sk.reset()
    sk.update(large)
    on_sketch = median_ms(lambda: compare(ref, sk), reps)
    speed.append({"case": "sketch: update 100 000 values / compare", "benchwatch_ms": upd,
                  "compare_on_sketch_ms": on_sketch})

    evidently: dict[str, float] | None = None
    ev_note = "skipped (--no-evidently)"
    if not args.no_evidently:
        evidently, ev_note = run_evidently(
            {"ref": ref_raw, "small": small, "large": large, "wide_ref": wide_ref,
             "wide_cur": wide_cur}, max(3, reps // 4), not args.no_install)
    if evidently:
        for row, key in zip(speed[:3], ("small", "large", "wide"), strict=True):
            row["evidently_ms"] = evidently[key]
            row["speedup_vs_evidently"] = evidently[key] / row["benchwatch_ms"]
        for row, key in zip(speed[:2], ("small", "large"), strict=True):
            row["evidently_w_sigma"] = evidently[key + "_value"]

    memory = []
    for n in (1_000, 100_000, 1_000_000):
        s = BinSketch(ref)
        s.update(rng.normal(size=n))
        memory.append({"window_values": n, "raw_window_bytes": n * 8, "sketch_bytes": s.nbytes})

    defaults = defaults_table(rng, args.quick)
    stream = streaming_table(rng, args.quick)
    delays = delay_table(rng, args.quick)

    # ---- print ----------------------------------------------------------------------------
    print(f"\nbenchwatch drift speed ({os.cpu_count()} CPUs, load average {figures['loadavg_at_start']:.1f} "
          "at start; medians of repeats)")
    print(f"{'case':30} {'target':>7} {'ours':>8} {'(best)':>8} {'scipy':>8} {'x':>6} "
          f"{'Evidently':>10} {'x':>6}")
    for row in speed[:3]:
        ev = row.get("evidently_ms")
        ev_cols = "" if ev is None else f"{ev:10.1f} {row['speedup_vs_evidently']:6.0f}"
        print(f"{row['case']:30} {row['target_ms']:7.1f} {row['benchwatch_ms']:8.3f} "
              f"{row['benchwatch_best_ms']:8.3f} "
              f"{row['scipy_ks+wasserstein_ms']:8.3f} {row['speedup_vs_scipy']:6.1f} "
              f"{ev_cols:17}  {'OK' if row['meets_target'] else 'MISS'}")
    for row in speed[:2]:
        print(f"  {row['case']}: unprepared reference {row['benchwatch_unprepared_ms']:.3f} ms; "
              f"scipy ks_2samp alone {row['scipy_ks_only_ms']:.3f} ms; detected={row['detected']} "
              f"W/sigma={row['w_sigma']:.4f} (|diff vs scipy| {row['w_sigma_abs_diff_vs_scipy']:.1e}"
              + (f", Evidently {row['evidently_w_sigma']:.4f}" if "evidently_w_sigma" in row else "")
              + f"), p={row['p_value']:.3g} (scipy {row['p_value_scipy']:.3g})")
    print(f"  20 features: drifted {speed[2]['drifted']} (f03 was shifted 0.3 sigma)")
    print(f"  sketch: update with 100 000 values {speed[3]['benchwatch_ms']:.3f} ms, compare on the "
          f"sketch {speed[3]['compare_on_sketch_ms']:.3f} ms")
    print(f"Evidently: {'ran (ValueDrift per column; DataDriftPreset for 20 features)' if evidently else ev_note}")
    print("Alibi Detect: not run, no code used (Business Source Licence).")

    print("\ndefault numeric test (KS p < 0.05 and W1/sigma >= 0.1), seeded simulations")
    print(f"{'case':52} {'trials':>6} {'alarms':>7} {'p<0.05':>7}  target")
    for row in defaults:
        print(f"{row['case']:52} {row['trials']:6} {row['alarm_rate']:7.3f} "
              f"{row['p_below_alpha_rate']:7.3f}  {row['target']}")

    print("\nmemory per monitored feature")
    print(f"{'window values':>14} {'raw window':>12} {'sketch':>8}")
    for row in memory:
        print(f"{row['window_values']:14,} {row['raw_window_bytes']:12,} {row['sketch_bytes']:8,}")

    print("\nstreaming: mean time to false alarm vs configured ERT (i.i.d. N(0,1), no drift;"
          " a fresh reference for each group of streams)")
    print(f"{'ERT':>6} {'ref n':>7} {'streams':>8} {'mean run':>9} {'ratio':>6} "
          f"{'per-reference range':>20}")
    for row in stream:
        rng_txt = f"{row['per_reference_min_ratio']:.2f}-{row['per_reference_max_ratio']:.2f}"
        print(f"{row['ert']:6} {row['reference_n']:7} {row['streams']:8} "
              f"{row['mean_run_length']:9.0f} {row['ratio']:6.2f} {rng_txt:>20}  "
              f"{'OK' if row['within_25pct'] else 'MISS'} (±25%)")
    print(f"\nstreaming: detection delay (values after the shift starts), ERT {delays[0]['ert']}")
    print(f"{'shift':>6} {'mean':>8} {'median':>8}")
    for row in delays:
        print(f"{row['shift_sigma']:5.2f}σ {row['mean_delay']:8.0f} {row['median_delay']:8.0f}")

    if args.json:
        args.json.write_text(json.dumps({"machine": figures, "speed": speed, "memory": memory,
                                         "defaults": defaults, "streaming": stream, "delays": delays,
                                         "evidently": evidently, "evidently_note": ev_note},
                                        indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
