"""Bin sketches: bounded memory, mergeable, and the same verdicts as the raw window."""

from __future__ import annotations

import numpy as np
import pytest

from drift import DriftError, NumericReference, compare
from drift.sketch import BinSketch


def test_sketch_memory_is_independent_of_window_length():
    rng = np.random.default_rng(51)
    ref = NumericReference.from_values(rng.normal(size=5000))
    sk = BinSketch(ref)
    size = sk.nbytes
    for _ in range(10):
        sk.update(rng.normal(size=100_000))
    assert sk.nbytes == size <= 1024 and sk.n == 1_000_000


@pytest.mark.parametrize("test", ["wasserstein", "ks", "psi", "js"])
def test_sketch_verdicts_agree_with_raw_values(test):
    rng = np.random.default_rng(52)
    ref = NumericReference.from_values(rng.normal(size=5000))
    for shift, n in ((0.0, 2000), (0.02, 200_000), (0.6, 2000)):
        x = rng.normal(shift, 1.0, n)
        a, b = BinSketch(ref), BinSketch(ref)
        a.update(x[: n // 2])
        b.update(x[n // 2:])
        a.merge(b)
        on_sketch, on_raw = compare(ref, a, test=test), compare(ref, x, test=test)
        assert on_sketch.detected == on_raw.detected, (shift, test)
        assert on_sketch.effect_size == pytest.approx(on_raw.effect_size, abs=0.03)
        assert on_sketch.details.get("sketch") == 1.0


def test_missing_and_mismatched_sketches():
    rng = np.random.default_rng(53)
    ref = NumericReference.from_values(rng.normal(size=500))
    sk = BinSketch(ref)
    sk.update([1.0, None, float("nan"), 0.5])
    assert sk.n == 2 and sk.n_missing == 2
    other = BinSketch(NumericReference.from_values(rng.normal(size=500)))
    with pytest.raises(DriftError, match="same reference"):
        sk.merge(other)
    sk.reset()
    with pytest.raises(DriftError, match="at least 2"):
        compare(ref, sk)
