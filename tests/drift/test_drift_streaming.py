"""Streaming detector: calibrated run length, detection, latch, acknowledge, reset, bounded state."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from drift import DriftError
from drift.streaming import StreamDetector, cusum_arl, cusum_limit


def test_markov_chain_arl_matches_published_tables():
    # one-sided CUSUM, k = 0.5: h = 4 -> ARL0 336, h = 5 -> 930 (Montgomery, SQC, table 9.5)
    assert cusum_arl(4.0, 0.5) == pytest.approx(336, rel=0.01)
    assert cusum_arl(5.0, 0.5) == pytest.approx(930, rel=0.01)
    h = cusum_limit(500.0, 0.5)
    assert cusum_arl(h, 0.5) == pytest.approx(500, rel=1e-4)


def test_mean_time_to_false_alarm_matches_ert():
    """Averaged over reference draws: one finite reference shifts the run length by itself
    (its sampling error looks like a small drift), see benchmarks/drift_speed.py."""
    rng = np.random.default_rng(31)
    ert = 200
    runs = []
    for _ in range(5):
        det = StreamDetector(rng.normal(size=5000), ert=ert, clear_after=10**9)
        for _ in range(50):
            det.reset()
            state = det.update(rng.normal(size=30 * ert))
            assert state.since_index is not None
            runs.append(state.since_index + 1)
    assert np.mean(runs) == pytest.approx(ert, rel=0.25)


def test_any_distribution_same_calibration():
    """Normal scores make the detector distribution-free: a skewed feature calibrates alike."""
    rng = np.random.default_rng(32)
    det = StreamDetector(rng.exponential(size=5000), ert=200, clear_after=10**9)
    runs = []
    for _ in range(200):
        det.reset()
        runs.append(det.update(rng.exponential(size=6000)).since_index + 1)
    assert np.mean(runs) == pytest.approx(200, rel=0.25)


def test_detects_shift_quickly_and_latches_until_clear_or_ack():
    rng = np.random.default_rng(33)
    det = StreamDetector(rng.normal(size=5000), ert=10_000, clear_after=300)
    quiet = det.update(rng.normal(size=500), timestamp=100.0)
    assert not quiet.firing
    hit = det.update(rng.normal(1.0, 1.0, 200), timestamp=200.0)
    assert hit.firing and hit.direction == "up" and hit.since_time == 200.0
    assert 500 <= hit.since_index < 560  # a 1 sigma shift is caught within a few dozen values
    still = det.update(rng.normal(size=100))
    assert still.firing and still.since_index == hit.since_index  # latched
    cleared = det.update(rng.normal(size=400))
    assert not cleared.firing and cleared.since_index is None  # cleared on its own
    again = det.update(rng.normal(-1.0, 1.0, 200))
    assert again.firing and again.direction == "down"
    det.acknowledge()
    assert not det.state.firing and det.state.alarms >= 2
    spread = det.update(rng.normal(0.0, 2.0, 300))
    assert spread.firing and spread.direction in ("spread", "up", "down")
    det.reset()
    assert det.state.n_seen == 0 and det.state.alarms == 0 and not det.state.firing


def test_state_is_bounded():
    rng = np.random.default_rng(34)
    det = StreamDetector(rng.normal(size=1000), ert=1000)
    before = sys.getsizeof(det.__dict__)
    for _ in range(20):
        det.update(rng.normal(size=5000))
    assert sys.getsizeof(det.__dict__) == before
    assert det.state.n_seen == 100_000


def test_bad_configuration_is_explained():
    with pytest.raises(DriftError, match="ert"):
        StreamDetector([1.0, 2.0, 3.0], ert=0)
    with pytest.raises(DriftError, match="numeric"):
        StreamDetector(["a", "b"], ert=100)
