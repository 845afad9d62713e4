"""Replay a text suite against a streaming canary (and, as shadow, the primary), then judge it on
time to first token and time per output token (p99, the judge's non-inferiority rules:
`benchwatch.bench.judge.judge_quantile`, Holm across gating metrics) and on its output-length
and stop-reason distributions (`drift.compare`, as the classifier's output features).

As the classifier replay: both arms get the same seeded prompt order, the arm order is drawn per
query, the first answer per prompt gives that prompt's output features, and a failure stops the
replay with what was measured kept (outcome `error`, never a PASS). Without a primary the
reference is the baseline's `ttft_p99_s`/`tpot_p99_s` at the `http_client` point (single
stream) and its output features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchwatch.bench.backends import BackendError
from benchwatch.bench.generative import GenBackend, generation_features, timed_request
from benchwatch.bench.judge import (
    NOT_MEASURED,
    Arm,
    JudgeSettings,
    MetricVerdict,
    Verdict,
    decide,
    judge_outputs,
    judge_quantile,
)
from benchwatch.bench.runner import Progress, query_order
from benchwatch.bench.text_suite import TextSuite
from benchwatch.errors import UsageError
from benchwatch.example import lm

# what the generative judge gates on: p99 of each, and these output features
TIMINGS = ("ttft", "tpot")
QUANTILE = 0.99
DRIFT_FEATURES = ("output_tokens", "stop_reason")


@dataclass(frozen=True)
class GenArmRecord:
    name: str
    ttft_s: np.ndarray = field(repr=False)
    tpot_s: np.ndarray = field(repr=False)  # nan where < 2 tokens
    outputs: tuple[lm.Generation | None, ...] = field(repr=False)  # per prompt, first answer


@dataclass(frozen=True)
class GenReplayResult:
    arms: Mapping[str, GenArmRecord]
    queries_done: int
    queries_planned: int
    errors: tuple[str, ...]


def gen_replay(arms: Mapping[str, GenBackend], suite: TextSuite, queries: int, warmup: int,
               seed: int, progress: Progress | None = None) -> GenReplayResult:
    names = list(arms)
    rng = np.random.default_rng(seed + 7)
    ttft = {n: np.full(queries, np.nan) for n in names}
    tpot = {n: np.full(queries, np.nan) for n in names}
    outs: dict[str, list[lm.Generation | None]] = {n: [None] * len(suite) for n in names}
    errors: list[str] = []
    done = 0
    mt, temp = suite.max_tokens, suite.temperature
    try:
        for i in query_order(len(suite), warmup, seed + 1).tolist():
            for n in names:
                timed_request(arms[n], suite.prompts[i], mt, temp, seed + i)
        order = query_order(len(suite), queries, seed)
        flips = rng.random(queries) < 0.5
        for j, i in enumerate(order.tolist()):
            for n in (reversed(names) if flips[j] else names):
                r = timed_request(arms[n], suite.prompts[i], mt, temp, seed + i)
                ttft[n][j], tpot[n][j] = r.ttft_s, r.tpot_s
                if outs[n][i] is None:
                    outs[n][i] = r.generation
            done = j + 1
            if progress and (done % 64 == 0 or done == queries):
                progress("replay", done, queries)
    except BackendError as e:
        errors.append(f"{e.kind}: {e} (after {done} of {queries} queries)")
    records = {n: GenArmRecord(n, ttft[n][:done], tpot[n][:done], tuple(outs[n])) for n in names}
    return GenReplayResult(records, done, queries, tuple(errors))


def _features(rec: GenArmRecord) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {}
    for g in rec.outputs:
        if g is not None:
            for k, v in generation_features(g).items():
                cols.setdefault(k, []).append(v)
    return cols


def baseline_timings(baseline: Any) -> dict[str, float]:
    """The baseline's TTFT/TPOT p99 at the point a replay measures (the HTTP client, single
    stream); a figure missing there is left out (the judge then says so)."""
    out = {}
    for what in TIMINGS:
        f = baseline.figure(f"{what}_p99_s", "http_client", "single_stream")
        if f is not None:
            out[what] = f.value
    return out


def judge_gen_replay(result: GenReplayResult, baseline: Any | None,
                     settings: JudgeSettings) -> Verdict:
    s = replace(settings, drift_features=DRIFT_FEATURES)
    rng = np.random.default_rng(s.seed)
    canary = result.arms["canary"]
    primary = result.arms.get("primary")
    if primary is None and baseline is None:
        raise UsageError("nothing to compare with: pass --primary URL or --baseline FILE")
    figures = baseline_timings(baseline) if baseline is not None else {}
    metrics: list[MetricVerdict] = []
    for what in TIMINGS:
        name = f"{what}_p{QUANTILE * 100:g}"
        c = getattr(canary, f"{what}_s")
        ref: np.ndarray | float | None = None
        if primary is not None:
            a = getattr(primary, f"{what}_s")
            ref = a[np.isfinite(a)]
        elif what in figures:
            ref = figures[what]
        if ref is None:
            metrics.append(MetricVerdict(name, NOT_MEASURED, False, None, None, None,
                                         s.latency_margin(QUANTILE), "ratio<=margin",
                                         reason=f"no reference {what}_p99_s (no primary, no "
                                                "baseline figure at the http_client point)"))
            continue
        m = judge_quantile(np.asarray(c[np.isfinite(c)], float), ref, QUANTILE, s, rng)
        metrics.append(replace(m, metric=name))
    ref_features = _features(primary) if primary is not None else \
        dict(baseline.features) if baseline is not None else {}
    c_arm = Arm("canary", features=_features(canary))
    r_arm = Arm("reference", features=ref_features)
    for m in judge_outputs(c_arm, r_arm, s, s.alpha):
        feat = m.metric.removeprefix("output_")
        metrics.append(replace(m, metric="output_length" if feat == "output_tokens"
                               else f"output_{feat}"))
    return decide(metrics, s)


def timing_summary(result: GenReplayResult) -> dict[str, dict[str, float | None]]:
    """Per arm, TTFT and TPOT p50/p99 (seconds) for the verdict document."""
    out: dict[str, dict[str, float | None]] = {}
    for n, rec in result.arms.items():
        row: dict[str, float | None] = {}
        for what in TIMINGS:
            a = getattr(rec, f"{what}_s")
            a = a[np.isfinite(a)]
            for q in (0.5, 0.99):
                v = float(np.quantile(a, q)) if len(a) else math.nan
                row[f"{what}_p{q * 100:g}_s"] = v if math.isfinite(v) else None
        out[n] = row
    return out
