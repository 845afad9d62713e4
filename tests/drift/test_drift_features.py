"""Many features: multiple-testing control keeps the family's false alarms at alpha; ranking."""

from __future__ import annotations

import numpy as np
import pytest

from drift import Baseline, DriftError
from drift.features import adjust_p_values, benjamini_hochberg, compare_features, holm


def test_holm_and_bh_match_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: .005 .01 .03 .04 -> holm: .02 .03 .06 .06 ; bh: .02 .02 .04 .04
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    assert holm([]).size == 0
    np.testing.assert_allclose(holm([0.9, 0.8]), [1.0, 1.0])


def _data(rng, n, shifts):
    return {f"f{i:02d}": rng.normal(s, 1.0, n) for i, s in enumerate(shifts)}


def test_family_wise_false_alarms_held_at_alpha():
    rng = np.random.default_rng(21)
    trials, features = 100, 20
    refs = Baseline.build("m", "v", _data(rng, 5000, [0.0] * features))
    any_holm = any_none = 0
    for _ in range(trials):
        cur = _data(rng, 1000, [0.0] * features)
        any_holm += compare_features(refs, cur, correction="holm").detected
        none = compare_features(refs, cur, correction="none", min_effect={
            k: 0.0 for k in cur})
        any_none += none.detected
    assert any_holm / trials <= 0.08  # family-wise rate <= 5% (+ binomial slack)
    assert any_none / trials >= 0.3  # without correction most windows would page someone


def test_ranks_the_drifted_features_first_by_severity():
    rng = np.random.default_rng(22)
    shifts = [0.0] * 10
    shifts[3], shifts[7] = 0.3, 1.0
    ref = _data(rng, 5000, [0.0] * 10)
    ref["colour"] = rng.choice(["red", "green", "blue"], 5000)
    cur = _data(rng, 1000, shifts)
    cur["colour"] = rng.choice(["red", "green", "blue"], 1000)
    cur["f05"][:300] = np.nan  # 30% missing: the missing-rate test catches it
    for correction in ("holm", "bh"):
        out = compare_features(ref, cur, correction=correction)
        # severity = how far past the floor: 30 points of missing values (30x the 1-point floor)
        # outrank a 1 sigma shift (10x the 0.1 sigma floor), which outranks 0.3 sigma (3x)
        assert out.drifted == ("f05", "f07", "f03")
        assert out.features[1].feature == "f07" and 7 < out.features[1].severity < 13
        assert out.get("f05", "missing").detected
        assert not out.get("f05", "wasserstein").detected
        assert not out.get("colour").detected
        assert all(f.adjusted_p_value >= f.result.p_value for f in out.features)


def test_features_missing_on_one_side_are_reported_not_fatal():
    rng = np.random.default_rng(23)
    out = compare_features({"a": rng.normal(size=100), "b": rng.normal(size=100)},
                           {"a": rng.normal(size=100), "c": [1.0], "b": [float("nan")] * 3})
    # b went all-missing: its own test cannot run (reported), its missing-rate test can and
    # says so -- a feature that stops arriving is drift, not an error
    assert [(f.feature, f.result.test) for f in out.features] == [
        ("b", "missing"), ("a", "wasserstein")]
    assert out.drifted == ("b",)
    assert set(out.not_compared) == {"b", "c"}
    assert "at least 2" in out.not_compared["b"] and set(out.failed) == {"b"}
    with pytest.raises(DriftError, match="correction"):
        compare_features({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, correction="sidak")


def test_a_missing_p_value_is_outside_the_family_and_never_drift():
    # the documented rule: None/NaN is no evidence -- adjusted p None, and m counts only the rest
    assert adjust_p_values([0.01, None, 0.04, float("nan"), 0.03]) == [
        pytest.approx(0.03), None, pytest.approx(0.06), None, pytest.approx(0.06)]
    assert adjust_p_values([0.01, None, 0.02], "bh") == [pytest.approx(0.02), None,
                                                         pytest.approx(0.02)]
    assert adjust_p_values([0.01, None], "none") == [0.01, None]
    assert adjust_p_values([]) == []
    with pytest.raises(DriftError, match="correction"):
        adjust_p_values([0.1], "sidak")


def test_min_samples_gates_the_own_test_but_not_the_missing_rate():
    rng = np.random.default_rng(24)
    ref = {"a": rng.normal(size=500), "b": rng.normal(size=500)}
    mostly_missing = [float("nan")] * 150 + list(rng.normal(size=50))
    out = compare_features(ref, {"a": rng.normal(size=50), "b": mostly_missing},
                           min_samples=100)
    assert out.not_compared == {"a": "50 values in the window, testing from 100",
                                "b": "50 non-missing values, testing from 100"}
    assert [(f.feature, f.result.test) for f in out.features] == [("b", "missing")]
    assert out.drifted == ("b",) and not out.failed
