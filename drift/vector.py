"""Vectors/embeddings: maximum mean discrepancy with a permutation-calibrated threshold.

Both samples are subsampled (seeded) to at most `max_n` rows: the kernel matrix is quadratic, and
the cap also keeps a negligible shift from becoming "significant" at huge n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drift.reference import FloatArray

__all__ = ["MMDOutcome", "mmd_permutation_test"]


@dataclass(frozen=True)
class MMDOutcome:
    mmd2: float
    threshold: float  # (1 - alpha) quantile of the permutation distribution of MMD^2
    p_value: float
    bandwidth: float
    n_reference: int
    n_current: int


def _subsample(a: FloatArray, max_n: int, rng: np.random.Generator) -> FloatArray:
    if a.shape[0] <= max_n:
        return a
    return a[rng.choice(a.shape[0], size=max_n, replace=False)]


def mmd_permutation_test(
    x: FloatArray, y: FloatArray, *, alpha: float = 0.05, n_permutations: int = 200,
    max_n: int = 500, seed: int = 0,
) -> MMDOutcome:
    rng = np.random.default_rng(seed)
    x = _subsample(x, max_n, rng)
    y = _subsample(y, max_n, rng)
    z = np.concatenate((x, y))
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    # median heuristic for the RBF bandwidth on the pooled sample
    off = d2[np.triu_indices(z.shape[0], k=1)]
    med = float(np.median(off)) if off.size else 1.0
    bandwidth = med if med > 0 else 1.0
    k = np.exp(-d2 / bandwidth)
    m, n = x.shape[0], y.shape[0]
    # MMD^2 (biased V-statistic) = s' K s with s = +1/m on X rows, -1/n on Y rows
    s0 = np.concatenate((np.full(m, 1.0 / m), np.full(n, -1.0 / n)))
    perms = np.empty((m + n, n_permutations + 1))
    perms[:, 0] = s0
    for i in range(n_permutations):
        perms[:, i + 1] = rng.permutation(s0)
    values = np.einsum("ip,ip->p", perms, k @ perms)
    observed, null = float(values[0]), values[1:]
    p = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    return MMDOutcome(
        mmd2=observed,
        threshold=float(np.quantile(null, 1 - alpha)),
        p_value=p,
        bandwidth=bandwidth,
        n_reference=m,
        n_current=n,
    )
