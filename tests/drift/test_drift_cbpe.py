"""CBPE: estimated accuracy from calibrated confidences; realized accuracy from late labels."""

from __future__ import annotations

import numpy as np
import pytest

from drift import Calibration, DriftError
from drift.cbpe import AccuracyMonitor, estimate_accuracy


def _stream(rng, n, shift=0.0):
    conf = np.clip(rng.beta(6, 1.5, n) - shift, 0.05, 1.0)
    correct = rng.random(n) < conf**2  # over-confident model: P(correct) = conf^2
    return conf, correct


def test_calibrated_estimate_tracks_realized_accuracy_uncalibrated_does_not():
    rng = np.random.default_rng(41)
    conf, correct = _stream(rng, 5000)
    cal = Calibration.fit(conf, correct)
    assert list(cal.accuracy) == sorted(cal.accuracy)  # monotone
    live_conf, live_correct = _stream(rng, 4000, shift=0.15)  # the model got worse
    est = estimate_accuracy(live_conf, cal)
    raw = estimate_accuracy(live_conf)
    truth = live_correct.mean()
    assert est is not None and raw is not None
    assert est.method == "cbpe" and raw.method == "mean_confidence"
    assert abs(est.value - truth) < 0.03
    assert abs(raw.value - truth) > 0.08
    assert est.lower < est.value < est.upper
    assert estimate_accuracy([float("nan")]) is None


def test_monitor_joins_late_labels_by_request_id_and_stays_bounded():
    rng = np.random.default_rng(42)
    conf, correct = _stream(rng, 3000)
    m = AccuracyMonitor(Calibration.fit(conf, correct), window=1000, max_pending=500)
    live_conf, live_correct = _stream(rng, 2000)
    for i, (c, ok) in enumerate(zip(live_conf, live_correct, strict=True)):
        m.record(f"req-{i}", "7" if ok else "1", float(c))
    for i in range(1500, 2000):
        assert m.label(f"req-{i}", "7")
    assert not m.label("req-0", "7")  # evicted long ago
    assert not m.label("never-seen", "7")
    r = m.report()
    assert r.pending == 0 and r.evicted == 1500 and r.unmatched_labels == 2
    assert r.estimated is not None and r.estimated.n == 1000
    assert r.realized is not None and r.realized.n == 500
    assert r.realized.value == pytest.approx(live_correct[1500:].mean())
    assert abs(r.estimated_on_labelled.value - r.realized.value) < 0.06
    m.record("x", "1", float("nan"))  # ignored, never raises
    m.reset()
    assert m.report().estimated is None


def test_calibration_round_trip_and_validation():
    rng = np.random.default_rng(43)
    conf, correct = _stream(rng, 500)
    cal = Calibration.fit(conf, correct)
    assert Calibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(DriftError, match="at least"):
        Calibration.fit([0.9] * 5, [True] * 5)
    with pytest.raises(DriftError, match="len"):
        Calibration.from_dict({"edges": [0.5], "accuracy": [0.5], "n": 3})
