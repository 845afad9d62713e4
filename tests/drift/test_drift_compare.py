"""drift.compare: exact statistics, and defaults right at both ends (seeded simulations)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from drift import DriftError, NumericReference, compare
from drift.numeric import summarize_current


@pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=2, max_size=80),
    st.lists(st.integers(-20, 20), min_size=2, max_size=80),
    st.floats(0.1, 3.0),
)
def test_ks_and_wasserstein_match_scipy_exactly_with_ties(ref, cur, scale):
    r = np.array(ref, dtype=float) * scale
    c = np.array(cur, dtype=float) * scale
    s = summarize_current(NumericReference.from_values(r), c)
    assert s.ks == pytest.approx(stats.ks_2samp(r, c).statistic, abs=1e-12)
    assert s.wasserstein == pytest.approx(stats.wasserstein_distance(r, c), rel=1e-9, abs=1e-9)


def test_continuous_large_sample_matches_scipy():
    rng = np.random.default_rng(3)
    r, c = rng.normal(size=5000), rng.standard_t(3, size=20_000) * 1.3 + 0.2
    s = summarize_current(NumericReference.from_values(r), c)
    assert s.ks == pytest.approx(stats.ks_2samp(r, c).statistic, abs=1e-12)
    assert s.wasserstein == pytest.approx(stats.wasserstein_distance(r, c), rel=1e-9)
    p = compare(r, c, test="ks").p_value
    assert p == pytest.approx(stats.ks_2samp(r, c, method="asymp").pvalue, rel=0.05, abs=1e-12)


def test_no_alarm_on_irrelevant_shift_at_large_n():
    rng = np.random.default_rng(11)
    ref = NumericReference.from_values(rng.normal(size=5000))
    results = [compare(ref, rng.normal(0.02, 1.0, 200_000)) for _ in range(5)]
    assert not any(r.detected for r in results)
    assert all(r.effect_size < 0.1 for r in results)
    # the p-value alone would have cried wolf at this n on a slightly larger shift
    loud = compare(ref, rng.normal(0.05, 1.0, 200_000))
    assert loud.p_value is not None and loud.p_value < 0.05 and not loud.detected


def test_detects_quarter_sigma_shift_at_n_1000_vs_5000():
    rng = np.random.default_rng(12)
    trials = 200
    hits = 0
    for _ in range(trials):
        ref = NumericReference.from_values(rng.normal(size=5000))
        hits += compare(ref, rng.normal(0.25, 1.0, 1000)).detected
    assert hits / trials >= 0.95


def test_false_alarms_at_nominal_rate_without_drift():
    rng = np.random.default_rng(13)
    trials = 400
    p_values, detected = [], 0
    for _ in range(trials):
        ref = NumericReference.from_values(rng.normal(size=5000))
        r = compare(ref, rng.normal(size=1000))
        assert r.p_value is not None
        p_values.append(r.p_value)
        detected += r.detected
    rate = np.mean(np.array(p_values) < 0.05)
    assert 0.02 <= rate <= 0.085  # the p-value is calibrated (binomial 3-sigma band around 5%)
    assert detected / trials <= 0.05  # the effect floor only removes alarms


@pytest.mark.parametrize("test", ["ks", "psi", "js"])
def test_other_numeric_tests_detect_and_stay_quiet(test):
    rng = np.random.default_rng(14)
    ref = NumericReference.from_values(rng.normal(size=5000))
    assert compare(ref, rng.normal(0.5, 1.0, 2000), test=test).detected
    assert not compare(ref, rng.normal(0.0, 1.0, 2000), test=test).detected
    assert not compare(ref, rng.normal(0.02, 1.0, 200_000), test=test).detected


def test_categorical_shift_unseen_and_calibration():
    rng = np.random.default_rng(15)
    cats = np.array(list("abcde"))
    probs = [0.4, 0.3, 0.15, 0.1, 0.05]
    ref = rng.choice(cats, size=5000, p=probs)
    false = sum(compare(ref, rng.choice(cats, size=1000, p=probs)).detected for _ in range(200))
    assert false / 200 <= 0.085  # nominal 5% within its binomial 3-sigma band
    shifted = compare(ref, rng.choice(cats, size=1000, p=[0.25, 0.3, 0.15, 0.15, 0.15]))
    assert shifted.detected and shifted.kind == "categorical"
    new = compare(ref, np.concatenate([rng.choice(cats, 900, p=probs), ["zzz"] * 100]))
    assert new.detected
    assert new.details["unseen_categories"] == 1
    assert new.details["unseen_fraction"] == pytest.approx(0.1)
    # ints and their strings are one category
    assert not compare([1, 2, 3] * 100, ["1", "2", "3"] * 100, kind="categorical").detected


def test_vectors_mmd_permutation_threshold():
    rng = np.random.default_rng(16)
    ref = rng.normal(size=(400, 8))
    quiet = [compare(ref, rng.normal(size=(300, 8)), seed=i, n_permutations=100) for i in range(20)]
    assert sum(r.detected for r in quiet) <= 3
    moved = compare(ref, rng.normal(0.3, 1.0, size=(300, 8)), n_permutations=100)
    assert moved.detected and moved.test == "mmd" and moved.score > moved.threshold
    with pytest.raises(DriftError, match="dimensions"):
        compare(ref, rng.normal(size=(10, 3)))


def test_missing_values_are_dropped_and_their_rate_tested():
    rng = np.random.default_rng(17)
    ref = NumericReference.from_values(rng.normal(size=5000))
    cur = rng.normal(size=1000)
    cur[:200] = np.nan
    r = compare(ref, cur)
    assert not r.detected and r.n_current == 800
    assert r.details["missing_rate_current"] == pytest.approx(0.2)
    m = compare(ref, cur, test="missing")
    assert m.detected and m.effect_size == pytest.approx(0.2)
    assert not compare(ref, list(cur[200:]) + [None] * 2, test="missing").detected


def test_infers_kind_and_reports_bad_input_clearly():
    assert compare([1.0, 2.0, 3.0] * 10, [1.0, 2.0, 3.5] * 10).kind == "numeric"
    assert compare(["a", "b"] * 10, ["a", "b"] * 10).kind == "categorical"
    assert compare([(0.0, 1.0)] * 10 + [(1.0, 0.0)] * 10, [(0.0, 1.0)] * 20,
                   n_permutations=20).kind == "vector"
    with pytest.raises(DriftError, match="no test 'chi2' for numeric"):
        compare([1.0, 2.0], [1.0, 2.0], test="chi2")
    with pytest.raises(DriftError, match="at least 2"):
        compare([1.0, 2.0, 3.0], [float("nan")] * 5)
    with pytest.raises(DriftError, match="non-numeric"):
        compare([1.0, 2.0, 3.0], ["x", "y"], kind="numeric")
    with pytest.raises(DriftError, match="alpha"):
        compare([1.0, 2.0], [1.0, 2.0], alpha=1.5)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(18)
    ref, cur = rng.normal(size=300), rng.normal(size=200)
    ref0, cur0 = ref.copy(), cur.copy()
    compare(ref, cur)
    compare(ref, cur, test="psi")
    np.testing.assert_array_equal(ref, ref0)
    np.testing.assert_array_equal(cur, cur0)


def test_result_is_frozen_and_explains_itself():
    r = compare(np.arange(100.0), np.arange(100.0) + 50)
    with pytest.raises(AttributeError):
        r.detected = False  # type: ignore[misc]
    assert r.detected and "DRIFT" in r.explain() and "wasserstein_sigma" in r.explain()
    assert r.to_dict()["test"] == "wasserstein"


def test_public_api_is_pinned():
    import drift

    assert set(drift.__all__) == {
        "TESTS", "AccuracyEstimate", "AccuracyMonitor", "AccuracyReport", "Baseline",
        "BaselineError", "BinSketch", "Calibration", "CategoricalReference", "DriftError", "Figure",
        "DriftResult", "FeatureComparison", "FeatureDrift", "NumericReference", "Provenance",
        "StreamDetector", "StreamState", "VectorReference", "compare", "compare_features",
        "estimate_accuracy", "infer_kind", "load_dir", "missing_rate_test", "prepare",
    }
    assert all(hasattr(drift, name) for name in drift.__all__)
