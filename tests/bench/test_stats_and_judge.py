"""The judge's calibration, by seeded simulation (the issue's acceptance numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from benchwatch.bench import stats
from benchwatch.bench.judge import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Arm,
    JudgeSettings,
    MetricVerdict,
    decide,
    judge,
)

ALPHA = 0.05
SETTINGS = JudgeSettings(alpha=ALPHA, bootstrap_draws=2000, drift_features=())


def latencies(rng: np.random.Generator, n: int, scale: float = 1.0, tail: float = 1.0) -> np.ndarray:
    x = rng.lognormal(np.log(2e-4), 0.35, n) * scale
    if tail != 1.0:  # the slowest 5% get `tail` times slower
        x = np.where(x > np.quantile(x, 0.95), x * tail, x)
    return x


def outcomes(trials: int, n: int, seed: int, **canary: float) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(trials):
        s = JudgeSettings(alpha=ALPHA, bootstrap_draws=2000, drift_features=(), seed=t)
        v = judge(Arm("canary", latencies(rng, n, **canary)), Arm("primary", latencies(rng, n)), s)
        out.append(v.outcome)
    return out


def test_exact_bootstrap_of_a_quantile_matches_resampling() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=700)
    exact = stats.bootstrap_quantile(x, 0.9, 20000, rng)
    naive = np.array([stats.quantile(rng.choice(x, len(x)), 0.9) for _ in range(3000)])
    assert abs(np.median(exact) - np.median(naive)) < 0.02 * np.median(naive)
    assert abs(np.std(exact) - np.std(naive)) < 0.1 * np.std(naive)


def test_block_bootstrap_widens_only_for_pairs_correlated_in_time() -> None:
    """Each arm's requests 10x slower one time in five during stretches of 500 queries, as when
    other jobs starve one server process for a while: resampling single pairs understates how
    far the p90 ratio moves, blocks of sqrt(n) pairs do not; on independent pairs both agree."""
    rng = np.random.default_rng(0)
    n = 5000

    def starved(x: np.ndarray) -> np.ndarray:
        stretch = np.repeat(rng.random(n // 500) < 0.5, 500)
        return np.where(stretch & (rng.random(n) < 0.2), x * 10, x)

    def spread(a: np.ndarray, b: np.ndarray, block: int) -> float:
        ra, rb = stats.paired_bootstrap_quantiles(a, b, (0.9,), 2000, rng, block)[0.9]
        return float(np.std(np.log(ra / rb)))

    assert stats.block_length(n) == 71
    a, b = latencies(rng, n), latencies(rng, n)
    assert 0.8 < spread(a, b, 71) / spread(a, b, 1) < 1.25
    a, b = starved(latencies(rng, n)), starved(latencies(rng, n))
    assert spread(a, b, 71) > 1.5 * spread(a, b, 1)


def test_holm_across_gating_metrics() -> None:
    def metric(name: str, p_fail: float, gating: bool = True) -> MetricVerdict:
        return MetricVerdict(name, INCONCLUSIVE, gating, None, None, None, None, "", 0.5, p_fail)

    # alone, 0.04 and 0.03 would fail at 0.05; Holm over three gating metrics: .03 .06 .06
    v = decide([metric("a", 0.01), metric("b", 0.04), metric("c", 0.03),
                metric("info", 0.001, gating=False)], SETTINGS)
    assert [m.outcome for m in v.metrics] == [FAIL, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE]
    assert [m.p_fail_holm for m in v.metrics] == pytest.approx([0.03, 0.06, 0.06, None])
    assert v.outcome == FAIL


def test_identical_canaries_fail_at_most_alpha_and_mostly_pass() -> None:
    res = outcomes(200, 2000, seed=11)
    false_fail = res.count(FAIL) / len(res)
    assert false_fail <= ALPHA
    # power: p50 within its 10% margin needs a few thousand queries; at 2000 most runs pass
    assert res.count(PASS) / len(res) >= 0.7


def test_canary_exactly_at_the_margin_is_rarely_passed_or_failed() -> None:
    res = outcomes(200, 2000, seed=12, scale=1.10)
    assert res.count(PASS) / len(res) <= ALPHA + 0.03  # false-pass bounded by alpha
    assert res.count(FAIL) / len(res) <= ALPHA + 0.03  # false-fail bounded by alpha


def test_canary_exactly_at_the_p99_margin_is_rarely_passed_or_failed() -> None:
    """The slowest 5% 50% slower: p99 ×1.5, the default p99 margin; p50 and p90 untouched."""
    res = outcomes(200, 2000, seed=14, tail=1.5)
    assert res.count(PASS) / len(res) <= ALPHA + 0.03
    assert res.count(FAIL) / len(res) <= ALPHA + 0.03


def test_slowest_five_percent_twice_as_slow_fails() -> None:
    res = outcomes(100, 2000, seed=13, tail=2.0)
    assert res.count(FAIL) / len(res) >= 0.95
    rng = np.random.default_rng(5)
    v = judge(Arm("c", latencies(rng, 2000, tail=2.0)), Arm("p", latencies(rng, 2000)), SETTINGS)
    by = {m.metric: m for m in v.metrics}
    assert by["latency_p99"].outcome == FAIL and by["latency_p99"].lower > 1.5
    assert by["latency_p50"].outcome == PASS  # the bulk is untouched


def test_too_few_queries_is_inconclusive_not_pass() -> None:
    rng = np.random.default_rng(1)
    v = judge(Arm("c", latencies(rng, 500)), Arm("p", latencies(rng, 500)), SETTINGS)
    by = {m.metric: m for m in v.metrics}
    assert by["latency_p99"].outcome == "inconclusive" and "662" in by["latency_p99"].reason
    assert v.outcome == "inconclusive"


def test_paired_accuracy() -> None:
    rng = np.random.default_rng(2)
    primary = rng.random(1000) < 0.97
    same = judge(Arm("c", correct=primary), Arm("p", correct=primary.copy()), SETTINGS)
    assert {m.metric: m.outcome for m in same.metrics}["accuracy"] == PASS
    worse = primary.copy()
    worse[np.flatnonzero(primary)[:50]] = False  # 5% of rows now wrong
    v = judge(Arm("c", correct=worse), Arm("p", correct=primary), SETTINGS)
    assert v.outcome == FAIL and {m.metric: m.outcome for m in v.metrics}["accuracy"] == FAIL


def test_baseline_figures_as_reference() -> None:
    rng = np.random.default_rng(4)
    lat = latencies(rng, 2000)
    figures = {"latency_p50_s": stats.quantile(lat, 0.5) * 2, "latency_p90_s": 1.0,
               "latency_p99_s": 1.0, "accuracy": 0.97}
    v = judge(Arm("c", latencies(rng, 2000), correct=rng.random(1000) < 0.97),
              Arm("baseline", figures=figures), SETTINGS)
    by = {m.metric: m.outcome for m in v.metrics}
    assert by["latency_p50"] == PASS and by["latency_p99"] == PASS
    assert by["accuracy"] in ("pass", "inconclusive")


def test_identical_canaries_with_every_gating_metric_fail_at_most_alpha() -> None:
    """Latency, paired accuracy (independent 3% errors: the pessimistic case) and output
    distributions (drift.compare) all gating, Holm across them."""
    rng = np.random.default_rng(21)

    def arm(name: str) -> Arm:
        rows = 449
        return Arm(name, latencies(rng, 2000), rng.random(rows) < 0.97,
                   {"predicted_class": [str(c) for c in rng.integers(0, 10, rows)],
                    "confidence": list(rng.beta(20, 1, rows))})

    res = [judge(arm("c"), arm("p"), JudgeSettings(bootstrap_draws=2000, seed=t)).outcome
           for t in range(200)]
    assert res.count(FAIL) / len(res) <= ALPHA
