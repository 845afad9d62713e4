"""Small statistics used by the runner and the judge: quantiles, significance rules, exact
bootstrap of order statistics and paired-accuracy (McNemar) tests. (Holm's step-down is
`drift.features.holm`.)"""

from __future__ import annotations

import math

import numpy as np

# MLPerf LoadGen early stopping at 99% confidence: the fewest queries that can bound a quantile.
MIN_QUERIES = {0.5: 10, 0.9: 64, 0.99: 662, 0.999: 6636}


def min_queries(q: float) -> int:
    for level in sorted(MIN_QUERIES):
        if q <= level + 1e-12:
            return MIN_QUERIES[level]
    return 6636


def quantile(values: np.ndarray, q: float) -> float:
    """The order statistic X_(ceil(q n)) (LoadGen and the bootstrap below use the same rule)."""
    s = np.sort(values)
    k = max(1, math.ceil(q * len(s) - 1e-9))
    return float(s[k - 1])


def _order_stat_cdf(n: int, q: float) -> np.ndarray:
    """P(bootstrap q-quantile <= X_(j)) for j = 1..n: the exact bootstrap distribution of an
    order statistic (Maritz & Jarrett 1978): P(Binomial(n, j/n) >= ceil(q n))."""
    from scipy.stats import binom

    k = max(1, math.ceil(q * n - 1e-9))
    j = np.arange(1, n + 1)
    return np.asarray(binom.sf(k - 1, n, j / n))


def bootstrap_quantile(values: np.ndarray, q: float, draws: int,
                       rng: np.random.Generator) -> np.ndarray:
    """`draws` bootstrap replicates of the q-quantile in O(n log n + draws log n), exactly
    distributed as resampling-with-replacement would give, without the resamples."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    cdf = _order_stat_cdf(len(s), q)
    idx = np.searchsorted(cdf, rng.random(draws), side="left")
    return s[np.minimum(idx, len(s) - 1)]


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b, c discordant pairs."""
    from scipy.stats import binomtest

    n = b + c
    return 1.0 if n == 0 else float(binomtest(b, n, 0.5).pvalue)


def paired_accuracy_noninferiority(primary_ok: np.ndarray, canary_ok: np.ndarray,
                                   margin: float) -> tuple[float, float, float, float, float]:
    """Non-inferiority of paired accuracy (canary >= primary - margin) with the McNemar
    variance of the paired difference (Wald form, with a +0.5 continuity-style floor so that
    zero discordant pairs still carries uncertainty proportional to 1/n).

    Returns (difference, se, p_noninferior_null, p_inferior_null, mcnemar_p):
    p_noninferior_null tests H0 "canary worse by >= margin" (small → PASS);
    p_inferior_null tests H0 "canary worse by <= margin" (small → FAIL)."""
    from scipy.stats import norm

    n = len(primary_ok)
    b = int(np.sum(~primary_ok & canary_ok))  # canary right, primary wrong
    c = int(np.sum(primary_ok & ~canary_ok))  # canary wrong, primary right
    d = (b - c) / n
    se = math.sqrt(max(b + c, 0.5) / n**2 - d**2 / n) if b + c > 0 else math.sqrt(0.5) / n
    z = (d + margin) / se
    return d, se, float(norm.sf(z)), float(norm.cdf(z)), mcnemar_exact_p(b, c)


def block_length(n: int) -> int:
    """Pairs per block of the paired bootstrap: ceil(sqrt(n)), 71 at 5 000. Pairs close in time
    are not independent on a busy host (other jobs starve one server process, then the other,
    for seconds), and resampling single pairs then draws intervals too narrow: of 23 A/A replays
    at load average 3.4-11 on 2 cores, 7 FAILed resampling single pairs, 4 with these blocks;
    10 of 10 PASSed at load 0.2-1 either way (docs/bench.md "Latency margins")."""
    return max(1, math.ceil(math.sqrt(n)))


def paired_bootstrap_quantiles(a: np.ndarray, b: np.ndarray, qs: tuple[float, ...], draws: int,
                               rng: np.random.Generator,
                               block: int = 1) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Bootstrap replicates of each q-quantile of two paired samples (a[i] and b[i] measured
    together): the same resampled pair indices for both, so what the pairs share (load on the
    machine at that moment) moves both quantiles alike. {q: (replicates of a, of b)}.
    `block` > 1: the moving-block bootstrap (Künsch 1989), runs of `block` consecutive pairs
    resampled whole, for pairs that are correlated in time."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    if n == 0 or len(b) != n:
        raise ValueError(f"paired samples need the same non-zero length, got {n} and {len(b)}")
    ks = [max(1, math.ceil(q * n - 1e-9)) - 1 for q in qs]
    block = min(max(1, block), n)
    runs = math.ceil(n / block)
    out_a = np.empty((len(qs), draws))
    out_b = np.empty((len(qs), draws))
    step = max(1, 2_000_000 // n)  # resamples per chunk: bounded memory at any n
    for start in range(0, draws, step):
        stop = min(start + step, draws)
        first = rng.integers(0, n - block + 1, size=(stop - start, runs))
        idx = (first[:, :, None] + np.arange(block)).reshape(stop - start, -1)[:, :n]
        for arr, out in ((a, out_a), (b, out_b)):
            part = np.partition(arr[idx], ks, axis=1)
            out[:, start:stop] = part[:, ks].T
    return {q: (out_a[i], out_b[i]) for i, q in enumerate(qs)}
