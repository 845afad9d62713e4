"""`compare(reference, current)`: one drift test, with defaults right at small and large n.

Every test pairs evidence with size: drift is declared only when the p-value is below `alpha`
AND the effect size reaches a floor. At n = 200 000 a KS p-value flags a 0.02 sigma shift almost
always; the floor (0.1 sigma of normed Wasserstein by default) keeps that quiet, while a 0.25 sigma
shift at n = 1 000 passes both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from drift import categorical, numeric
from drift.reference import (
    CategoricalReference,
    NumericReference,
    Reference,
    VectorReference,
    as_categorical,
    as_numeric,
    as_vectors,
    infer_kind,
    prepare,
)
from drift.result import DriftError, DriftResult
from drift.sketch import BinSketch
from drift.vector import mmd_permutation_test

__all__ = ["DEFAULT_TEST", "TESTS", "compare", "missing_rate_test"]


@dataclass(frozen=True)
class TestSpec:
    effect_metric: str
    min_effect: float  # default floor
    doc: str


# (kind, test) -> what the effect size is and its default floor
TESTS: dict[tuple[str, str], TestSpec] = {
    ("numeric", "wasserstein"): TestSpec(
        "wasserstein_sigma", 0.1, "KS p-value; effect: W1 / reference std"),
    ("numeric", "ks"): TestSpec("ks_d", 0.05, "KS p-value; effect: KS statistic D"),
    ("numeric", "psi"): TestSpec(
        "psi", 0.1, "chi2 on reference-quantile bins; effect: PSI on those bins"),
    ("numeric", "js"): TestSpec(
        "js_distance", 0.05, "chi2 on reference-quantile bins; effect: Jensen-Shannon distance"),
    ("categorical", "js"): TestSpec(
        "js_distance", 0.05, "chi2 homogeneity; effect: Jensen-Shannon distance (base 2)"),
    ("categorical", "chi2"): TestSpec(
        "total_variation", 0.05, "chi2 homogeneity; effect: total variation distance"),
    ("categorical", "psi"): TestSpec("psi", 0.1, "chi2 homogeneity; effect: PSI"),
    ("vector", "mmd"): TestSpec(
        "mmd", 0.0, "RBF-kernel MMD, permutation-calibrated threshold; effect: sqrt(MMD^2)"),
}
for _k in ("numeric", "categorical", "vector"):
    TESTS[(_k, "missing")] = TestSpec(
        "missing_rate_diff", 0.01, "chi2 on missing/present counts; effect: |rate difference|")
DEFAULT_TEST = {"numeric": "wasserstein", "categorical": "js", "vector": "mmd"}
MIN_CURRENT = 2


def _check_args(alpha: float, min_effect: float | None) -> None:
    if not 0.0 < alpha < 1.0:
        raise DriftError(f"alpha must be in (0, 1), got {alpha!r}")
    if min_effect is not None and (not math.isfinite(min_effect) or min_effect < 0):
        raise DriftError(f"min_effect must be a finite number >= 0, got {min_effect!r}")


def compare(
    reference: Any,
    current: Any,
    *,
    kind: str | None = None,
    test: str | None = None,
    alpha: float = 0.05,
    min_effect: float | None = None,
    seed: int = 0,
    n_permutations: int = 200,
) -> DriftResult:
    """Compare `current` with `reference` (raw values or a prepared reference from a Baseline).

    kind: "numeric" | "categorical" | "vector", inferred from the data when None.
    test: see `TESTS`; defaults: numeric "wasserstein", categorical "js", vector "mmd".
    """
    _check_args(alpha, min_effect)
    if kind is None:
        kind = infer_kind(reference)
    ref = prepare(reference, kind)
    test = test or DEFAULT_TEST[ref.kind]
    spec = TESTS.get((ref.kind, test))
    if spec is None:
        allowed = sorted(t for k, t in TESTS if k == ref.kind)
        raise DriftError(f"no test {test!r} for {ref.kind} data; use one of {allowed}")
    floor = spec.min_effect if min_effect is None else float(min_effect)
    if test == "missing":
        return missing_rate_test(ref, current, alpha=alpha, min_effect=floor)
    if isinstance(ref, NumericReference):
        if isinstance(current, BinSketch):
            return _numeric_sketch(ref, current, test, spec.effect_metric, alpha, floor)
        return _numeric(ref, current, test, spec.effect_metric, alpha, floor)
    if isinstance(ref, CategoricalReference):
        return _categorical(ref, current, test, spec.effect_metric, alpha, floor)
    return _vector(ref, current, alpha, floor, seed, n_permutations)


def _too_few(n: int, kind: str) -> DriftError:
    return DriftError(
        f"current {kind} sample has {n} non-missing values; need at least {MIN_CURRENT} "
        "(wait for a fuller window, or check why every value is missing)"
    )


def _result(
    *, effect: float, floor: float, p: float | None, alpha: float, test: str, metric: str,
    kind: str, n_ref: int, n_cur: int, statistic: float, details: dict[str, float],
    score: float | None = None, threshold: float | None = None,
) -> DriftResult:
    detected = p is not None and p < alpha and effect >= floor
    return DriftResult(
        detected=bool(detected),
        score=float(effect if score is None else score),
        threshold=float(floor if threshold is None else threshold),
        p_value=p,
        test=test,
        effect_size=float(effect),
        effect_metric=metric,
        kind=kind,
        n_reference=n_ref,
        n_current=n_cur,
        alpha=alpha,
        min_effect=floor,
        statistic=float(statistic),
        details=MappingProxyType(details),  # read-only: the result is a frozen value
    )


def _numeric(
    ref: NumericReference, current: Any, test: str, metric: str, alpha: float, floor: float
) -> DriftResult:
    cur, missing = as_numeric(current)
    if cur.size < MIN_CURRENT:
        raise _too_few(int(cur.size), "numeric")
    summary = numeric.summarize_current(ref, cur)
    details = {
        "ks_d": summary.ks,
        "wasserstein_sigma": summary.wasserstein / ref.scale,
        "mean_shift_sigma": (float(cur.mean()) - ref.mean) / ref.scale,
        "missing_rate_reference": ref.missing_rate,
        "missing_rate_current": missing / (cur.size + missing),
    }
    if test in ("wasserstein", "ks"):
        p = numeric.ks_pvalue(summary.ks, ref.n, cur.size, ref, cur)
        effect = details[metric]
        stat = summary.ks
    else:
        ref_counts = numeric.bin_counts_of_reference(ref)
        stat, p = numeric.chi2_homogeneity(ref_counts, summary.bin_counts)
        effect = (numeric.psi if test == "psi" else numeric.js_distance)(
            ref_counts, summary.bin_counts)
        details[metric] = effect
    return _result(effect=effect, floor=floor, p=p, alpha=alpha, test=test, metric=metric,
                   kind="numeric", n_ref=ref.n, n_cur=int(cur.size), statistic=stat,
                   details=details)


def _numeric_sketch(
    ref: NumericReference, sk: BinSketch, test: str, metric: str, alpha: float, floor: float
) -> DriftResult:
    if sk.reference is not ref and not np.array_equal(sk.reference.edges, ref.edges):
        raise DriftError("the sketch was built on another reference; build it from this one")
    n = sk.n
    if n < MIN_CURRENT:
        raise _too_few(n, "numeric")
    d, w = sk.ks_and_wasserstein()
    details = {
        "ks_d": d,
        "wasserstein_sigma": w / ref.scale,
        "missing_rate_reference": ref.missing_rate,
        "missing_rate_current": sk.n_missing / (n + sk.n_missing),
        "sketch": 1.0,
    }
    if test in ("wasserstein", "ks"):
        p = numeric.ks_pvalue(d, ref.n, n)
        effect, stat = details[metric], d
    else:
        ref_counts = numeric.bin_counts_of_reference(ref)
        cur_counts = sk.coarse_counts()
        stat, p = numeric.chi2_homogeneity(ref_counts, cur_counts)
        effect = (numeric.psi if test == "psi" else numeric.js_distance)(ref_counts, cur_counts)
        details[metric] = effect
    return _result(effect=effect, floor=floor, p=p, alpha=alpha, test=test, metric=metric,
                   kind="numeric", n_ref=ref.n, n_cur=n, statistic=stat, details=details)


def _categorical(
    ref: CategoricalReference, current: Any, test: str, metric: str, alpha: float, floor: float
) -> DriftResult:
    cur, missing = as_categorical(current)
    if len(cur) < MIN_CURRENT:
        raise _too_few(len(cur), "categorical")
    counts = categorical.count_current(ref, cur)
    stat, p = numeric.chi2_homogeneity(counts.reference, counts.current)
    if test == "js":
        effect = numeric.js_distance(counts.reference, counts.current)
    elif test == "psi":
        effect = numeric.psi(counts.reference, counts.current)
    else:
        effect = categorical.total_variation(counts.reference, counts.current)
    details = {
        metric: effect,
        "unseen_categories": float(len(counts.unseen)),
        "unseen_fraction": counts.unseen_fraction,
        "missing_rate_reference": ref.missing_rate,
        "missing_rate_current": missing / (len(cur) + missing),
    }
    return _result(effect=effect, floor=floor, p=p, alpha=alpha, test=test, metric=metric,
                   kind="categorical", n_ref=ref.n, n_cur=len(cur), statistic=stat,
                   details=details)


def _vector(
    ref: VectorReference, current: Any, alpha: float, floor: float, seed: int, n_perm: int
) -> DriftResult:
    cur, missing = as_vectors(current)
    if cur.shape[0] < MIN_CURRENT:
        raise _too_few(int(cur.shape[0]), "vector")
    if cur.shape[1] != ref.dim:
        raise DriftError(f"current vectors have {cur.shape[1]} dimensions, reference {ref.dim}")
    out = mmd_permutation_test(ref.values, cur, alpha=alpha, n_permutations=n_perm, seed=seed)
    effect = math.sqrt(max(out.mmd2, 0.0))
    detected_score = out.mmd2
    details = {
        "mmd": effect,
        "bandwidth": out.bandwidth,
        "n_reference_used": float(out.n_reference),
        "n_current_used": float(out.n_current),
        "missing_rate_reference": ref.missing_rate,
        "missing_rate_current": missing / (cur.shape[0] + missing),
    }
    return _result(effect=effect, floor=floor, p=out.p_value, alpha=alpha, test="mmd",
                   metric="mmd", kind="vector", n_ref=ref.n, n_cur=int(cur.shape[0]),
                   statistic=out.mmd2, details=details, score=detected_score,
                   threshold=out.threshold)


def missing_rate_test(
    reference: Reference, current: Any, *, alpha: float = 0.05, min_effect: float = 0.01
) -> DriftResult:
    """Has the share of missing values changed? chi2 on (missing, present) counts."""
    if isinstance(reference, NumericReference):
        cur_present, cur_missing = as_numeric(current)
        n_present = int(cur_present.size)
    elif isinstance(reference, CategoricalReference):
        cats, cur_missing = as_categorical(current)
        n_present = len(cats)
    else:
        vecs, cur_missing = as_vectors(current)
        n_present = int(vecs.shape[0])
    ref_counts = np.array([reference.n_missing, reference.n])
    cur_counts = np.array([cur_missing, n_present])
    if cur_counts.sum() == 0:
        raise _too_few(0, reference.kind)
    stat, p = numeric.chi2_homogeneity(ref_counts, cur_counts)
    rate_ref = reference.missing_rate
    rate_cur = cur_missing / cur_counts.sum()
    effect = abs(rate_cur - rate_ref)
    return _result(effect=effect, floor=min_effect, p=p, alpha=alpha, test="missing",
                   metric="missing_rate_diff", kind=reference.kind, n_ref=int(ref_counts.sum()),
                   n_cur=int(cur_counts.sum()), statistic=stat,
                   details={"missing_rate_reference": rate_ref, "missing_rate_current": rate_cur})


