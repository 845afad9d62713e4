"""Confidence calibration for CBPE: a monotone map from model confidence to P(correct).

Fitted on the labelled reference (the benchmark run): confidences are cut into equal-count bins,
each bin's accuracy is measured, and pool-adjacent-violators makes the map non-decreasing. Stored
as plain numbers in the baseline manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.result import DriftError

__all__ = ["Calibration"]


def _pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pool adjacent violators: the weighted non-decreasing fit to `values`."""
    blocks: list[list[float]] = []  # [value, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            blocks[-1] = [(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return np.repeat([b[0] for b in blocks], [int(b[2]) for b in blocks])


@dataclass(frozen=True)
class Calibration:
    edges: tuple[float, ...]  # interior bin edges on confidence
    accuracy: tuple[float, ...]  # calibrated P(correct) per bin, non-decreasing
    n: int

    @classmethod
    def fit(cls, confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray,
            *, n_bins: int = 10) -> Calibration:
        c = np.asarray(confidences, dtype=np.float64)
        y = np.asarray(correct, dtype=np.float64)
        if c.shape != y.shape or c.ndim != 1:
            raise DriftError("confidences and correct must be 1-D and of equal length")
        ok = np.isfinite(c)
        c, y = c[ok], y[ok]
        if c.size < 2 * n_bins:
            raise DriftError(
                f"calibration needs at least {2 * n_bins} labelled predictions, got {c.size}")
        edges = np.unique(np.quantile(c, np.arange(1, n_bins) / n_bins))
        idx = np.searchsorted(edges, c, side="left")
        k = edges.size + 1
        hits = np.bincount(idx, weights=y, minlength=k)
        counts = np.bincount(idx, minlength=k).astype(np.float64)
        acc = (hits + 0.5) / (counts + 1.0)  # Jeffreys-style smoothing keeps 0/1 bins sane
        acc = _pav(acc, np.maximum(counts, 1.0))
        return cls(tuple(edges.tolist()), tuple(float(a) for a in acc), int(c.size))

    def apply(self, confidences: Sequence[float] | np.ndarray) -> np.ndarray:
        c = np.asarray(confidences, dtype=np.float64)
        return np.asarray(self.accuracy)[np.searchsorted(np.asarray(self.edges), c, side="left")]

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "accuracy": list(self.accuracy), "n": self.n}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        try:
            edges = tuple(float(x) for x in d["edges"])
            acc = tuple(float(x) for x in d["accuracy"])
            n = int(d["n"])
        except (KeyError, TypeError, ValueError) as e:
            raise DriftError(f"calibration must have edges, accuracy and n ({e!r})") from None
        if len(acc) != len(edges) + 1 or not all(0.0 <= a <= 1.0 for a in acc):
            raise DriftError("calibration needs len(accuracy) == len(edges) + 1, values in [0, 1]")
        if list(edges) != sorted(edges):
            raise DriftError("calibration edges must be increasing")
        return cls(edges, acc, n)
