"""Streaming drift detection calibrated to an expected run time (ERT), with a latch.

Each value is mapped to a normal score through the reference: z = Phi^-1(PIT(x)), where PIT is
the mid-rank position of x in the sorted reference. Without drift z is (close to) N(0, 1)
whatever the feature's distribution, so one calibration serves every feature. Three CUSUM charts
watch z: location up, location down (increments z -/+ k) and spread up (increments z^2 - k_s).

Calibration is by theory, not trial: the average run length of each chart is computed with the
Brook-Evans Markov-chain approximation and its limit h is solved so the combined false-alarm
rate (the sum of the charts' rates, less a measured 5% for the spread chart's dependence on the
location charts) gives a mean time to a false alarm equal to `ert`
(benchmarks/drift_speed.py checks this by simulation). State is a few floats: memory is bounded
and independent of stream length.

Latch: the first alarm sets `firing` with `since_index`/`since_time`; the charts restart and keep
watching. The detector stays firing until `clear_after` values pass without another alarm, or
until `acknowledge()`.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift._scipy import special, stats
from drift.reference import NumericReference, as_numeric, prepare
from drift.result import DriftError

__all__ = ["StreamDetector", "StreamState", "cusum_arl", "cusum_limit"]

N_STATES = 250  # Markov-chain resolution; ARL error well under 1% for normal increments
SPREAD_K = 1.46  # optimal CUSUM reference value for a spread increase sigma 1 -> 1.5 (z^2 scale)
# Adding the rates assumes the charts alarm independently; the spread chart shares the large |z|
# that drive the location charts, so together they alarm a little less often than the sum says.
# Simulated with exact N(0, 1) scores (4 000 streams each): union run length / target = 1.042
# (k = 0.25) and 1.057 (k = 0.5) at ERT 1 000, 1.054 (k = 0.25) at ERT 2 000. Without the spread
# chart the sum is accurate (0.98 +- 0.015). So per-chart targets are divided by this factor.
SPREAD_DEPENDENCE = 1.05


def _increment_cdf(chart: str) -> Any:
    if chart == "location":
        return special.ndtr
    if chart == "spread":
        return lambda x: stats.chi2.cdf(x, 1)
    raise ValueError(chart)


def cusum_arl(h: float, k: float, chart: str = "location", n_states: int = N_STATES) -> float:
    """Average run length without drift of a one-sided CUSUM S = max(0, S + X - k) > h.

    X ~ N(0, 1) for chart="location", X ~ chi2(1) (= z^2) for chart="spread".
    """
    if h <= 0:
        return 1.0
    cdf = _increment_cdf(chart)
    w = 2.0 * h / (2 * n_states - 1)  # state i stands for S in [(i - 1/2) w, (i + 1/2) w)
    centers = np.arange(n_states) * w
    upper = (np.arange(n_states) + 0.5) * w
    # P[i, j] = P(c_i + X - k < upper_j) - P(c_i + X - k < upper_{j-1}); state 0 absorbs S <= 0
    cum = cdf(upper[None, :] - centers[:, None] + k)
    p = np.diff(np.concatenate((np.zeros((n_states, 1)), cum), axis=1), axis=1)
    arl = np.linalg.solve(np.eye(n_states) - p, np.ones(n_states))
    return float(arl[0])


@functools.lru_cache(maxsize=64)
def cusum_limit(arl: float, k: float, chart: str = "location") -> float:
    """The limit h whose no-drift average run length is `arl` (bisection on `cusum_arl`)."""
    if arl <= 1:
        raise DriftError(f"expected run time must be > 1 observation, got {arl}")
    lo, hi = 0.0, 1.0
    while cusum_arl(hi, k, chart) < arl:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise DriftError(f"cannot reach an ARL of {arl} with k={k}")
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if cusum_arl(mid, k, chart) < arl:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class StreamState:
    firing: bool
    since_index: int | None  # index (0-based, in values seen) of the alarm that started firing
    since_time: float | None  # wall-clock time of that alarm (or the timestamp passed in)
    n_seen: int
    alarms: int  # alarms since the last reset (each restart of the charts counts one)
    last_alarm_index: int | None
    direction: str | None  # chart that raised the latest alarm: "up", "down" or "spread"
    statistic: float  # largest chart value relative to its limit, in [0, 1) between alarms
    up: float
    down: float
    spread: float


class StreamDetector:
    """CUSUM drift detector on normal scores, calibrated so the mean time to a false alarm is `ert`.

    k: location reference value in sigma (detects shifts around 2k best; 0.25 -> 0.5 sigma).
    spread: also watch for a larger spread (costs a third of the false-alarm budget).
    clear_after: values without a new alarm before a firing detection clears on its own
    (default max(100, ert / 10)).
    """

    def __init__(
        self,
        reference: Any,
        *,
        ert: float = 10_000.0,
        k: float = 0.25,
        spread: bool = True,
        clear_after: int | None = None,
    ) -> None:
        ref = prepare(reference, "numeric")
        assert isinstance(ref, NumericReference)
        if not (math.isfinite(ert) and ert > 1):
            raise DriftError(f"ert must be a finite number of observations > 1, got {ert!r}")
        if not (math.isfinite(k) and k >= 0):
            raise DriftError(f"k must be >= 0, got {k!r}")
        self.reference = ref
        self.ert = float(ert)
        self.k = float(k)
        self.watch_spread = spread
        charts = 3 if spread else 2
        # rates add: each chart gets ARL = charts * ert, so 1/ert = sum of 1/ARL
        per_chart = charts * self.ert / (SPREAD_DEPENDENCE if spread else 1.0)
        self.h_location = cusum_limit(per_chart, self.k, "location")
        self.h_spread = cusum_limit(per_chart, SPREAD_K, "spread") if spread else math.inf
        self.clear_after = int(clear_after if clear_after is not None else max(100, ert / 10))
        if self.clear_after < 1:
            raise DriftError("clear_after must be >= 1")
        self._m = ref.n
        self.reset()

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything seen: charts, latch, counters."""
        self._up = self._down = self._spread = 0.0
        self._n = 0
        self._alarms = 0
        self._firing = False
        self._since_index: int | None = None
        self._since_time: float | None = None
        self._last_alarm: int | None = None
        self._direction: str | None = None

    def acknowledge(self) -> None:
        """A person has seen the alarm: stop firing and restart the charts (counters stay)."""
        self._firing = False
        self._since_index = self._since_time = None
        self._up = self._down = self._spread = 0.0

    @property
    def state(self) -> StreamState:
        stat = max(self._up / self.h_location, self._down / self.h_location,
                   self._spread / self.h_spread if self.watch_spread else 0.0)
        return StreamState(
            firing=self._firing, since_index=self._since_index, since_time=self._since_time,
            n_seen=self._n, alarms=self._alarms, last_alarm_index=self._last_alarm,
            direction=self._direction, statistic=stat, up=self._up, down=self._down,
            spread=self._spread,
        )

    # -- scoring -------------------------------------------------------------------------
    def scores(self, values: Any) -> np.ndarray:
        """Normal scores of finite values through the reference (mid-rank PIT)."""
        x, _ = as_numeric(values)
        s = self.reference.sorted_values
        lo = np.searchsorted(s, x, side="left")
        hi = np.searchsorted(s, x, side="right")
        u = (0.5 * (lo + hi) + 0.5) / (self._m + 1)
        return np.asarray(special.ndtri(u), dtype=np.float64)

    def update(self, values: Any, timestamp: float | None = None) -> StreamState:
        """Feed one value or a batch (missing values are skipped); returns the state after it."""
        if isinstance(values, int | float):
            values = [values]
        z = self.scores(values).tolist()
        k, ks, h, hs = self.k, SPREAD_K, self.h_location, self.h_spread
        up, down, sp = self._up, self._down, self._spread
        n = self._n
        for zi in z:
            up = max(0.0, up + zi - k)
            down = max(0.0, down - zi - k)
            sp = max(0.0, sp + zi * zi - ks)
            if up > h or down > h or sp > hs:
                self._alarm(n, "up" if up > h else "down" if down > h else "spread", timestamp)
                up = down = sp = 0.0
            elif self._firing and self._last_alarm is not None \
                    and n - self._last_alarm >= self.clear_after:
                self._firing = False
                self._since_index = self._since_time = None
            n += 1
        self._up, self._down, self._spread, self._n = up, down, sp, n
        return self.state

    def _alarm(self, index: int, direction: str, timestamp: float | None) -> None:
        self._alarms += 1
        self._last_alarm = index
        self._direction = direction
        if not self._firing:
            self._firing = True
            self._since_index = index
            self._since_time = time.time() if timestamp is None else timestamp
