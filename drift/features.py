"""Many features at once: one test per feature, multiple-testing control, a ranking.

Testing 20 features at alpha = 0.05 without correction gives a false alarm on about two windows
in three; Holm (family-wise) or Benjamini-Hochberg (false discovery rate) keeps the budget.
The effect-size floor still applies per feature after the adjustment.

This module is the one multi-feature verdict: the drift service (per model, per evaluation) and
`benchwatch drift compare` (per pair of CSV files) both call `compare_features`, so the same
data gives the same per-feature verdicts and adjusted p-values everywhere.

A test result without a finite p-value (None or NaN) is no evidence: it is not a hypothesis in
the family (it does not count in Holm's or BH's m, so it does not weaken the others), its
adjusted p-value is None, and it is never declared drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drift.compare import compare, missing_rate_test
from drift.reference import (
    CategoricalReference,
    NumericReference,
    Reference,
    as_categorical,
    as_numeric,
    as_vectors,
    prepare,
)
from drift.result import DriftError, DriftResult

__all__ = [
    "CORRECTIONS",
    "FeatureComparison",
    "FeatureDrift",
    "adjust_p_values",
    "benjamini_hochberg",
    "compare_features",
    "holm",
]

CORRECTIONS = ("holm", "bh", "none")


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adj
    return out


def adjust_p_values(p_values: Sequence[float | None], correction: str = "holm"
                    ) -> list[float | None]:
    """Adjusted p-values across a family; a missing p-value (None or NaN) stays None and does
    not count in the family. correction: "holm", "bh" or "none"."""
    if correction not in CORRECTIONS:
        raise DriftError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    tested = [(i, float(p)) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    raw = [p for _, p in tested]
    adjusted = holm(raw) if correction == "holm" else \
        benjamini_hochberg(raw) if correction == "bh" else np.asarray(raw, dtype=np.float64)
    out: list[float | None] = [None] * len(p_values)
    for (i, _), p in zip(tested, adjusted.tolist(), strict=True):
        out[i] = float(p)
    return out


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    result: DriftResult
    adjusted_p_value: float | None
    detected: bool  # adjusted p < alpha and effect >= floor
    severity: float  # how far past its floor: effect / floor (MMD: statistic / threshold)

    def explain(self) -> str:
        adj = "n/a" if self.adjusted_p_value is None else f"{self.adjusted_p_value:.3g}"
        return f"{self.feature}: {'DRIFT' if self.detected else 'ok'} " \
               f"(severity {self.severity:.2f}, adjusted p {adj}) {self.result.explain()}"


@dataclass(frozen=True)
class FeatureComparison:
    """Per-feature results, most severe drift first."""

    features: tuple[FeatureDrift, ...]
    correction: str
    alpha: float
    not_compared: Mapping[str, str] = field(default_factory=dict)  # feature -> why
    failed: Mapping[str, str] = field(default_factory=dict)  # feature -> the error of a test

    @property
    def drifted(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for f in self.features:
            if f.detected:
                seen.setdefault(f.feature, None)
        return tuple(seen)

    @property
    def detected(self) -> bool:
        return any(f.detected for f in self.features)

    def get(self, feature: str, test: str | None = None) -> FeatureDrift:
        for f in self.features:
            if f.feature == feature and (test is None or f.result.test == test):
                return f
        raise KeyError(f"no result for feature {feature!r}" + (f" test {test!r}" if test else ""))


def _severity(r: DriftResult) -> float:
    if r.test == "mmd":
        return r.score / r.threshold if r.threshold > 0 else (np.inf if r.score > 0 else 0.0)
    if r.min_effect > 0:
        return r.effect_size / r.min_effect
    return r.effect_size


def _references(reference: Any) -> Mapping[str, Any]:
    feats = getattr(reference, "features", None)  # a drift.Baseline
    if isinstance(feats, Mapping):
        return feats
    if isinstance(reference, Mapping):
        return reference
    raise DriftError("reference must be a Baseline or a mapping of feature -> values")


def _n_present(ref: Reference, values: Any) -> int:
    """How many current values are not missing, counted as the tests count them."""
    if isinstance(ref, NumericReference):
        return int(as_numeric(values)[0].size)
    if isinstance(ref, CategoricalReference):
        return len(as_categorical(values)[0])
    return int(as_vectors(values)[0].shape[0])


def compare_features(
    reference: Any,
    current: Mapping[str, Any],
    *,
    correction: str = "holm",
    alpha: float = 0.05,
    tests: Mapping[str, str | None] | None = None,
    min_effect: Mapping[str, float] | None = None,
    missing: bool = True,
    min_samples: int = 0,
) -> FeatureComparison:
    """Compare every feature present in both; adjust p-values across all the tests run.

    missing=True adds a missing-rate test for each feature that has missing values on either
    side (one more hypothesis in the family); it runs even when the feature's own test cannot
    (every current value missing is drift, not an error). `tests` defaults to the Baseline's own.
    min_samples: a feature with fewer current values than this (missing ones included) is not
    tested; with fewer non-missing values, only its missing-rate test runs. A feature whose own
    test did not run is in `not_compared` with the reason; `failed` holds the tests that raised.
    """
    if correction not in CORRECTIONS:
        raise DriftError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    refs = _references(reference)
    if tests is None:  # a Baseline may pin a test per feature
        tests = getattr(reference, "tests", None)
    tests, min_effect = tests or {}, min_effect or {}
    results: list[tuple[str, DriftResult]] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in sorted(set(refs) | set(current)):
        if name not in current:
            skipped[name] = "no current values"
            continue
        if name not in refs:
            skipped[name] = "not in the reference"
            continue
        values = current[name]
        if min_samples and len(values) < min_samples:
            skipped[name] = f"{len(values)} values in the window, testing from {min_samples}"
            continue
        try:
            ref: Reference = prepare(refs[name])
        except DriftError as e:
            skipped[name] = failed[name] = str(e)
            continue
        try:
            present = _n_present(ref, values) if min_samples else 0
            if present < min_samples:
                skipped[name] = f"{present} non-missing values, testing from {min_samples}"
            else:
                results.append((name, compare(ref, values, test=tests.get(name), alpha=alpha,
                                              min_effect=min_effect.get(name))))
        except DriftError as e:
            skipped[name] = failed[name] = str(e)
        if missing:
            try:
                m = missing_rate_test(ref, values, alpha=alpha)
            except DriftError as e:
                failed.setdefault(name, str(e))
                continue
            if m.details["missing_rate_reference"] or m.details["missing_rate_current"]:
                results.append((name, m))
    adjusted = adjust_p_values([r.p_value for _, r in results], correction)
    out = []
    for (name, r), adj in zip(results, adjusted, strict=True):
        detected = adj is not None and adj < alpha and r.effect_size >= r.min_effect
        out.append(FeatureDrift(name, r, adj, bool(detected), float(_severity(r))))
    out.sort(key=lambda f: (not f.detected, -f.severity, f.feature))
    return FeatureComparison(tuple(out), correction, alpha, skipped, failed)
