"""Numeric two-sample statistics against a prepared reference.

The current sample is sorted once (numpy's SIMD sort, ~1 ms at n = 200 000); the reference's
distinct values are then located in it by binary search. From those positions and prefix sums of
the sorted current sample (taken only at those positions) we get the exact KS statistic, the exact
1-Wasserstein distance and the quantile-bin counts, without merging the two samples: the cost is
O(n log n) in the current sample plus O(m) in the reference's distinct values.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from drift._scipy import special, stats
from drift.reference import FloatArray, NumericReference

__all__ = [
    "NumericSummary",
    "binned_counts",
    "chi2_homogeneity",
    "js_distance",
    "ks_pvalue",
    "psi",
    "summarize_current",
]

EXACT_KS_BELOW = 100  # below this many current or reference values, scipy's exact KS p-value
PSEUDO_COUNT = 0.5  # keeps PSI/JS finite when a bin is empty on one side


@dataclass(frozen=True)
class NumericSummary:
    ks: float
    wasserstein: float
    bin_counts: np.ndarray
    n: int


def _prefix_sums_at(c_ext: np.ndarray, k: np.ndarray) -> np.ndarray:
    """sum(c[:k_i]) for non-decreasing k_i in [0, n]; `c_ext` is c with one trailing 0.

    One `np.add.reduceat` pass over the segments between consecutive k (about 6x cheaper than a
    full cumulative sum at n = 100 000); empty segments, which reduceat reports as one element,
    are zeroed.
    """
    idx = np.empty(k.size + 1, dtype=np.intp)
    idx[0] = 0
    idx[1:] = k
    seg = np.add.reduceat(c_ext, idx)[:-1]
    seg[idx[1:] == idx[:-1]] = 0.0
    return np.cumsum(seg)


def summarize_current(ref: NumericReference, cur: FloatArray) -> NumericSummary:
    """KS statistic, W1 distance and quantile-bin counts of `cur` (finite values) vs `ref`."""
    n = cur.size
    c_ext = np.empty(n + 1)
    c = c_ext[:n]
    c[:] = cur
    c.sort()
    c_ext[n] = 0.0
    u, fr = ref.unique, ref.cdf
    c_lt = np.searchsorted(c, u, side="left")  # #(c <  u_i)
    c_le = c_lt.copy()  # #(c <= u_i): differs only where a current value equals u_i
    tie = c_lt < n
    tie[tie] = c[c_lt[tie]] == u[tie]
    if tie.any():
        c_le[tie] = np.searchsorted(c, u[tie], side="right")
    # KS: on [u_i, u_i+1) F_ref is constant and F_cur rises from c_le[i]/n to c_lt[i+1]/n, so the
    # supremum sits at those endpoints.
    d = max(float(np.max(np.abs(fr - c_le / n))), float(np.max(np.abs(ref.cdf_before - c_lt / n))))

    # W1 = integral of |F_ref - F_cur| dx, with prefix sums of the sorted current sample
    both = np.empty(2 * u.size, dtype=np.intp)
    both[0::2], both[1::2] = c_lt, c_le
    s_both = _prefix_sums_at(c_ext, both)
    s_lt, s_le = s_both[0::2], s_both[1::2]
    total = float(s_le[-1]) + float(c[c_le[-1]:].sum())
    w = (c_lt[0] * u[0] - s_lt[0]) / n  # left of the reference: F_ref = 0
    j = c_le[-1]
    w += ((total - s_le[-1]) - (n - j) * u[-1]) / n  # right of it: F_ref = 1
    if u.size > 1:
        lo, hi, width = u[:-1], u[1:], ref.gaps
        a = fr[:-1]
        k0, k1 = c_le[:-1], c_lt[1:]  # current points strictly inside (lo, hi): k0..k1-1
        s0, s1 = s_le[:-1], s_lt[1:]
        integral = (k0 * width + (k1 - k0) * hi - (s1 - s0)) / n  # of F_cur over the segment
        contrib = np.abs(integral - a * width)
        an = a * n
        cross = (k0 < an) & (an < k1)  # F_cur crosses F_ref inside the segment
        if cross.any():
            ci = np.flatnonzero(cross)
            aa, l0, h0, kk0 = a[ci], lo[ci], hi[ci], k0[ci]
            jj = np.floor(an[ci]).astype(np.intp)
            xs = c[jj]  # F_cur <= a left of xs, > a from xs on
            pairs = np.empty(2 * ci.size, dtype=np.intp)
            pairs[0::2], pairs[1::2] = kk0, jj
            part = np.add.reduceat(c_ext, pairs)[0::2]  # sum c[kk0:jj]
            part[jj == kk0] = 0.0
            left_int = (kk0 * (xs - l0) + (jj - kk0) * xs - part) / n
            right_int = integral[ci] - left_int
            contrib[ci] = (aa * (xs - l0) - left_int) + (right_int - aa * (h0 - xs))
        w += float(contrib.sum())
    counts = binned_counts(ref, c, presorted=True)
    return NumericSummary(ks=d, wasserstein=float(w), bin_counts=counts, n=n)


def binned_counts(ref: NumericReference, values: FloatArray, *, presorted: bool = False) -> np.ndarray:
    """Counts of `values` in the reference's quantile bins (bin i = (edges[i-1], edges[i]])."""
    c = values if presorted else np.sort(values)
    idx = np.searchsorted(c, ref.edges, side="right")
    return np.diff(np.concatenate(([0], idx, [c.size])))


def ks_pvalue(d: float, n_ref: int, n_cur: int, ref: NumericReference | None = None,
              cur: FloatArray | None = None) -> float:
    """Two-sided KS p-value: asymptotic with Stephens' correction, exact for small samples."""
    if min(n_ref, n_cur) < EXACT_KS_BELOW and ref is not None and cur is not None:
        with warnings.catch_warnings():  # scipy falls back to asymptotic itself, and says so
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(ref.sorted_values, cur, method="exact").pvalue)
    en = n_ref * n_cur / (n_ref + n_cur)
    sq = math.sqrt(en)
    return float(min(1.0, special.kolmogorov((sq + 0.12 + 0.11 / sq) * d)))


def _fractions(counts: np.ndarray) -> np.ndarray:
    c = counts.astype(np.float64) + PSEUDO_COUNT
    out: np.ndarray = c / c.sum()
    return out


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index, sum (q - p) ln(q / p), with a half-count in every bin."""
    p, q = _fractions(ref_counts), _fractions(cur_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the two binned distributions."""
    p = ref_counts / max(ref_counts.sum(), 1)
    q = cur_counts / max(cur_counts.sum(), 1)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, 0.5 * (kl_p + kl_q))))


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared test that both count vectors come from one distribution: (statistic, p)."""
    r = ref_counts.astype(np.float64)
    c = cur_counts.astype(np.float64)
    tot = r + c
    keep = tot > 0
    r, c, tot = r[keep], c[keep], tot[keep]
    nr, nc = r.sum(), c.sum()
    if tot.size < 2 or nr == 0 or nc == 0:
        return 0.0, 1.0
    n = nr + nc
    er, ec = tot * nr / n, tot * nc / n
    stat = float(np.sum((r - er) ** 2 / er) + np.sum((c - ec) ** 2 / ec))
    return stat, float(special.chdtrc(tot.size - 1, stat))


def bin_counts_of_reference(ref: NumericReference) -> np.ndarray:
    return np.rint(ref.bin_fractions * ref.n).astype(np.int64)
