"""Replay a suite against a canary and, as shadow, the primary (paired by request), then judge.

Both arms are warmed up, then get the same seeded query order, each query sent to both back to
back (the arm order randomized per query, seeded, so neither arm always runs on a warmer cache):
query j's two latencies form a pair, and the judge bootstraps the pairs. (Sending a pair at the
same moment from two client threads was tried: on a loaded 2-core host the client's GIL hand-off
added its own asymmetry, so it was no steadier.) The first answer per suite row gives that
row's prediction and output features (the paired accuracy test and the output-distribution
tests); all timed queries give latencies. Any failure stops the replay with what was measured so far kept: the outcome is then `error` (exit 3),
never a PASS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchwatch.bench.artifacts import output_features
from benchwatch.bench.backends import Backend, BackendError
from benchwatch.bench.energy_scrape import EnergyWindows
from benchwatch.bench.judge import Arm, JudgeSettings, Verdict, judge
from benchwatch.bench.runner import Progress, query_order
from benchwatch.bench.suites import Suite
from benchwatch.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmRecord:
    name: str
    latencies_s: np.ndarray = field(repr=False)
    outputs: np.ndarray | None = field(repr=False)  # (rows, k); NaN rows never answered
    answered: int
    energy_j: np.ndarray | None = field(default=None, repr=False)  # per-window J/inference


@dataclass(frozen=True)
class ReplayResult:
    arms: Mapping[str, ArmRecord]
    queries_done: int
    queries_planned: int
    errors: tuple[str, ...]


def replay(arms: Mapping[str, Backend], suite: Suite, queries: int, warmup: int, seed: int,
           progress: Progress | None = None,
           energy: Mapping[str, EnergyWindows] | None = None,
           energy_window_s: float = 1.0) -> ReplayResult:
    """Warm-up, then each query to every arm back to back (pairs, in a seeded random order
    per query), so both arms of a pair see the machine in the same state."""
    rows = [suite.inputs[i : i + 1] for i in range(len(suite))]
    names = list(arms)
    rng = np.random.default_rng(seed + 7)
    lat = {n: np.empty(queries) for n in names}
    outs: dict[str, np.ndarray | None] = {n: None for n in names}
    seen = np.zeros(len(suite), dtype=bool)
    errors: list[str] = []
    done = 0
    classes = suite.metadata.get("num_classes")
    try:
        for i in query_order(len(suite), warmup, seed + 1):
            for n in names:
                arms[n].predict(rows[i])
        order = query_order(len(suite), queries, seed)
        flips = rng.random(queries) < 0.5
        pc = time.perf_counter_ns
        energy = energy or {}
        for w in energy.values():
            w.mark()
        next_mark = time.monotonic() + energy_window_s
        for j in range(queries):
            if energy and time.monotonic() >= next_mark:  # between queries: never timed
                for w in energy.values():
                    w.mark()
                next_mark = time.monotonic() + energy_window_s
            i = int(order[j])
            for n in (reversed(names) if flips[j] else names):
                t0 = pc()
                out = arms[n].predict(rows[i])
                lat[n][j] = (pc() - t0) / 1e9
                if not seen[i]:
                    o = outs[n]
                    if classes is not None and out.shape[1] != int(classes):
                        raise BackendError("shape", f"{n} returns {out.shape[1]} scores per row "
                                           f"but suite {suite.name!r} has {classes} classes: "
                                           "the suite does not fit this model")
                    if o is None:
                        o = outs[n] = np.full((len(suite), out.shape[1]), np.nan, np.float32)
                    if out.shape[1] != o.shape[1]:
                        raise BackendError("malformed", f"{n}: {out.shape[1]} outputs per row "
                                           f"after {o.shape[1]} before")
                    o[i] = out[0]
            seen[i] = True
            done = j + 1
            if progress and (done % 128 == 0 or done == queries):
                progress("replay", done, queries)
        for w in (energy or {}).values():
            w.mark()
    except BackendError as e:
        errors.append(f"{e.kind}: {e} (after {done} of {queries} queries)")
        log.error("replay stopped: %s", errors[-1])
    records = {n: ArmRecord(n, lat[n][:done], outs[n], done,
                            energy[n].samples if energy and n in energy else None)
               for n in names}
    return ReplayResult(records, done, queries, tuple(errors))


def arm_from_record(rec: ArmRecord, suite: Suite) -> Arm:
    correct = None
    features: dict[str, list[Any]] = {}
    if rec.outputs is not None:
        answered = ~np.isnan(rec.outputs).any(axis=1)
        if answered.all():
            correct = rec.outputs.argmax(1) == suite.expected
        if answered.any():
            features = output_features(rec.outputs[answered])
    return Arm(rec.name, latencies_s=rec.latencies_s, correct=correct, features=features,
               energy_j=rec.energy_j)


def judge_figures(baseline: Any) -> dict[str, float]:
    """The baseline figures a replay can be judged against, each measured where the replay
    measures: latency at the HTTP client (single-stream, like the replay's paced queries),
    energy per inference from the server's probe (model_call), accuracy from the outputs.
    A figure missing at that point is left out: the judge then says it has no reference."""
    wanted = {**{f"latency_p{p}_s": ("http_client", "single_stream") for p in (50, 90, 99)},
              "energy_per_inference_j": ("model_call", None), "accuracy": ("outputs", None),
              "flip_rate": ("outputs", "tiny_noise")}
    out = {}
    for name, (point, scenario) in wanted.items():
        f = baseline.figure(name, point, scenario)
        if f is not None:
            out[name] = f.value
    return out


def arm_from_baseline(baseline: Any) -> Arm:
    return Arm(f"baseline {baseline.model}/{baseline.version}", latencies_s=None,
               correct=None, features=dict(baseline.features), figures=judge_figures(baseline))


def judge_replay(result: ReplayResult, suite: Suite, baseline: Any | None,
                 settings: JudgeSettings,
                 flips: Mapping[str, np.ndarray] | None = None) -> Verdict:
    """`flips`: per arm, the flip pass over the same perturbed queries
    (`benchwatch.bench.robustness.flip_pass`), judged like accuracy."""
    flips = flips or {}
    canary = replace(arm_from_record(result.arms["canary"], suite), flipped=flips.get("canary"))
    if "primary" in result.arms:
        reference = arm_from_record(result.arms["primary"], suite)
        if baseline is not None:  # the baseline adds figures (e.g. energy) the replay lacks
            reference = Arm(reference.name, reference.latencies_s, reference.correct,
                            reference.features, reference.energy_j, judge_figures(baseline))
        reference = replace(reference, flipped=flips.get("primary"))
    elif baseline is not None:
        reference = arm_from_baseline(baseline)
    else:
        raise UsageError("nothing to compare with: pass --primary URL or --baseline FILE")
    return judge(canary, reference, settings)
