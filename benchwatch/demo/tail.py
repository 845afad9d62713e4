"""How much a p99 of n calls can be trusted, and what the ratio of two of them can tell.

The p99 of n calls is about their (n/100)-th slowest; which call that is moves by chance: the
number of calls slower than the true p99 is Binomial(n, 0.01), so with 95% confidence the
true p99 lies between the sample quantiles at ranks n q ± 1.96 sqrt(n q (1 - q)) (the
distribution-free interval of a quantile, normal approximation). At 1 200 calls that is the
5th to the 19th slowest call: on a heavy tail, a span of 2x or more. A live p99 and a baseline
p99 that differ by less than their intervals allow are not told apart by their calls. The
interval takes the calls as independent; on a busy host another job's stall slows a run of
consecutive calls together, and two windows measured alike can then differ by more than it
allows (`benchmarks/p99_aa.py` measures that floor).

The demo reports each p99 with this interval and the range their ratio can take, and says
when that range straddles the 1.2x band (`Comparison.verdict`), rather than calling a chance
difference a regression or a chance agreement a match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from benchwatch import promtext
from benchwatch.bench.stats import quantile

Z95 = 1.959964  # two-sided 95%
BAND = 1.2  # live/baseline within 1.2x either way


def levels(n: float, q: float, z: float = Z95) -> tuple[float, float]:
    """The quantile levels whose sample quantiles bracket the true q-quantile of n calls."""
    half = z * math.sqrt(n * q * (1 - q))
    return max(0.0, (n * q - half) / n), min(1.0, (n * q + half + 1) / n)


def of_buckets(q: float, cumulative: Mapping[float, float]) -> tuple[float, float] | None:
    """The interval of the q-quantile of a histogram (cumulative buckets, as
    `promtext.quantile` reads them); None without calls."""
    n = max(cumulative.values(), default=0.0)
    if n <= 0:
        return None
    lo, hi = (promtext.quantile(level, cumulative) for level in levels(n, q))
    return None if lo is None or hi is None else (lo, hi)


def of_values(q: float, values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """The interval of the q-quantile of raw latencies (the order statistics, as the bench's
    `stats.quantile` takes them); None without values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return None
    lo, hi = levels(v.size, q)
    return quantile(v, max(lo, 1e-12)), quantile(v, hi)


@dataclass(frozen=True)
class Comparison:
    """live / baseline, and the range it spans with each figure anywhere in its interval."""

    ratio: float
    low: float
    high: float

    @staticmethod
    def of(live: float, live_interval: tuple[float, float],
           base: float, base_interval: tuple[float, float]) -> Comparison | None:
        if base <= 0 or base_interval[0] <= 0:
            return None
        return Comparison(live / base, live_interval[0] / base_interval[1],
                          live_interval[1] / base_interval[0])

    @property
    def within(self) -> bool:
        return 1 / BAND <= self.ratio <= BAND

    @property
    def verdict(self) -> str:
        if 1 / BAND <= self.low and self.high <= BAND:
            return f"within {BAND:g}x beyond chance"
        if self.high < 1 / BAND or self.low > BAND:
            return f"outside {BAND:g}x beyond chance"
        return f"too few calls to tell a {BAND:g}x difference from chance"
