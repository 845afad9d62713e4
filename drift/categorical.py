"""Categorical comparison: counts over the reference's categories plus any unseen ones."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from drift.reference import CategoricalReference

__all__ = ["CategoricalCounts", "count_current"]


@dataclass(frozen=True)
class CategoricalCounts:
    reference: np.ndarray  # reference counts, unseen categories appended as zeros
    current: np.ndarray
    unseen: tuple[str, ...]  # categories in the current sample that the reference never had

    @property
    def unseen_fraction(self) -> float:
        k = len(self.unseen)
        total = self.current.sum()
        return float(self.current[-k:].sum() / total) if k and total else 0.0


def count_current(ref: CategoricalReference, values: list[str]) -> CategoricalCounts:
    counts = Counter(values)
    cur = [counts.pop(cat, 0) for cat in ref.categories]
    unseen = tuple(sorted(counts))
    cur.extend(counts[u] for u in unseen)
    ref_counts = np.concatenate((ref.counts, np.zeros(len(unseen), dtype=np.int64)))
    return CategoricalCounts(ref_counts, np.array(cur, dtype=np.int64), unseen)


def total_variation(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p = ref_counts / max(ref_counts.sum(), 1)
    q = cur_counts / max(cur_counts.sum(), 1)
    return float(0.5 * np.abs(p - q).sum())
