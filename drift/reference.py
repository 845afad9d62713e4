"""Prepared references: everything a test can precompute from the reference sample, once.

A `NumericReference` keeps the sorted reference, its distinct values with their CDF and the
quantile bin edges, so a comparison only sorts the current sample and searches the reference
points in it (no merge of both samples per call). Baselines store and reload these.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from drift.result import DriftError

__all__ = [
    "CategoricalReference",
    "Kind",
    "NumericReference",
    "Reference",
    "VectorReference",
    "as_categorical",
    "as_numeric",
    "as_vectors",
    "infer_kind",
    "prepare",
]

Kind = Literal["numeric", "categorical", "vector"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "vector")
FloatArray = npt.NDArray[np.float64]
DEFAULT_BINS = 10
MISSING = "<missing>"


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def infer_kind(values: Any) -> Kind:
    """numeric for real-valued 1-D data, vector for 2-D data or tuples, categorical otherwise."""
    if isinstance(values, NumericReference):
        return "numeric"
    if isinstance(values, CategoricalReference):
        return "categorical"
    if isinstance(values, VectorReference):
        return "vector"
    if isinstance(values, np.ndarray):
        if values.ndim == 2:
            return "vector"
        if values.ndim != 1:
            raise DriftError(f"expected 1-D values (or 2-D vectors), got shape {values.shape}")
        if values.dtype.kind in "fiu":
            return "numeric"
        if values.dtype.kind in "bUS":
            return "categorical"
        values = values.tolist()
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, bool | str | bytes | np.bool_ | np.str_):
            return "categorical"
        if isinstance(v, int | float | np.integer | np.floating):
            return "numeric"
        if isinstance(v, tuple | list | np.ndarray):
            return "vector"
        raise DriftError(
            f"cannot infer the kind of values like {v!r} ({type(v).__name__}); "
            "pass kind='numeric', 'categorical' or 'vector'"
        )
    raise DriftError("no non-missing values to infer a kind from; pass kind= explicitly")


def as_numeric(values: Any) -> tuple[FloatArray, int]:
    """Finite float64 values and the count of missing (None, NaN, ±inf) ones."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.ndim == 1:
        a = values
    else:
        try:
            if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
                a = values.astype(np.float64, copy=False)
            else:
                a = np.array(
                    [math.nan if v is None else v for v in values], dtype=np.float64
                )
        except (TypeError, ValueError) as e:
            raise DriftError(
                f"numeric drift test got non-numeric values ({e}); pass kind='categorical' "
                "if these are labels"
            ) from None
        if a.ndim != 1:
            raise DriftError(f"expected 1-D numeric values, got shape {a.shape}")
    finite = np.isfinite(a)
    if finite.all():
        return a, 0
    return a[finite], int(a.size - finite.sum())


def as_categorical(values: Any) -> tuple[list[str], int]:
    """Values as strings (so 3 and "3" are one category) and the count of missing ones."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "US":  # no None/NaN possible
        return values.astype(str).tolist(), 0
    out: list[str] = []
    missing = 0
    seq = values.tolist() if isinstance(values, np.ndarray) else values
    for v in seq:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
        else:
            out.append(v.decode() if isinstance(v, bytes) else str(v))
    return out, missing


def as_vectors(values: Any) -> tuple[FloatArray, int]:
    """Rows of a 2-D float64 array; rows with a missing or non-finite entry are counted missing."""
    if isinstance(values, np.ndarray) and values.ndim == 2:
        a = values.astype(np.float64, copy=False)
        missing = 0
    else:
        rows = list(values)
        present = [v for v in rows if v is not None]
        missing = len(rows) - len(present)
        if not present:
            return np.empty((0, 0)), missing
        try:
            a = np.array(present, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DriftError(f"vectors must be equal-length numeric tuples ({e})") from None
        if a.ndim != 2:
            raise DriftError(f"vectors must be equal-length numeric tuples, got shape {a.shape}")
    ok = np.isfinite(a).all(axis=1)
    if ok.all():
        return a, missing
    return a[ok], missing + int((~ok).sum())


@dataclass(frozen=True, eq=False)
class NumericReference:
    """Sorted reference, distinct values with their right-continuous CDF, quantile bin edges."""

    sorted_values: FloatArray = field(repr=False)
    unique: FloatArray = field(repr=False)
    cdf: FloatArray = field(repr=False)  # F_ref(unique[i]) = P(X <= unique[i])
    edges: FloatArray  # interior quantile-bin edges; bin i = (edges[i-1], edges[i]]
    bin_fractions: FloatArray = field(repr=False)
    mean: float
    std: float
    scale: float  # std, or a fallback when the reference is constant
    n_missing: int = 0
    kind: str = "numeric"

    @property
    def n(self) -> int:
        return int(self.sorted_values.size)

    @functools.cached_property
    def cdf_before(self) -> FloatArray:
        """F_ref just below each distinct value (the left limit)."""
        return _readonly(np.concatenate(([0.0], self.cdf[:-1])))

    @functools.cached_property
    def gaps(self) -> FloatArray:
        return _readonly(np.diff(self.unique))

    @property
    def missing_rate(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @classmethod
    def from_values(
        cls, values: Any, *, n_bins: int = DEFAULT_BINS, n_missing: int = 0
    ) -> NumericReference:
        a, missing = as_numeric(values)
        if a.size < 2:
            raise DriftError(
                f"numeric reference needs at least 2 finite values, got {a.size}; "
                "build the baseline from more data"
            )
        s = np.sort(a)
        return cls.from_sorted(s, n_bins=n_bins, n_missing=n_missing + missing)

    @classmethod
    def from_sorted(
        cls, s: FloatArray, *, n_bins: int = DEFAULT_BINS, n_missing: int = 0,
        edges: FloatArray | None = None,
    ) -> NumericReference:
        unique, counts = np.unique(s, return_counts=True)
        cdf = np.cumsum(counts) / s.size
        if edges is None:
            q = np.quantile(s, np.arange(1, n_bins) / n_bins)
            edges = np.unique(q)
        idx = np.searchsorted(s, edges, side="right")
        bin_counts = np.diff(np.concatenate(([0], idx, [s.size])))
        mean = float(s.mean())
        std = float(s.std())
        scale = std if std > 0 else (abs(mean) if mean != 0 else 1.0)
        return cls(
            sorted_values=_readonly(s),
            unique=_readonly(unique),
            cdf=_readonly(cdf),
            edges=_readonly(np.asarray(edges, dtype=np.float64)),
            bin_fractions=_readonly(bin_counts / s.size),
            mean=mean,
            std=std,
            scale=scale,
            n_missing=n_missing,
        )


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    categories: tuple[str, ...]
    counts: npt.NDArray[np.int64] = field(repr=False)
    n_missing: int = 0
    kind: str = "categorical"

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def missing_rate(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @classmethod
    def from_values(cls, values: Any) -> CategoricalReference:
        cats, missing = as_categorical(values)
        if not cats:
            raise DriftError("categorical reference has no non-missing values")
        u, c = np.unique(np.array(cats, dtype=str), return_counts=True)
        return cls.from_counts(dict(zip(u.tolist(), c.tolist(), strict=True)), n_missing=missing)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], *, n_missing: int = 0) -> CategoricalReference:
        cats = tuple(sorted(counts))
        arr = np.array([int(counts[c]) for c in cats], dtype=np.int64)
        if (arr < 0).any() or arr.sum() == 0:
            raise DriftError("categorical reference counts must be non-negative and not all zero")
        return cls(categories=cats, counts=_readonly(arr), n_missing=n_missing)


@dataclass(frozen=True, eq=False)
class VectorReference:
    values: FloatArray = field(repr=False)  # (n, d)
    n_missing: int = 0
    kind: str = "vector"

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    @property
    def missing_rate(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @classmethod
    def from_values(cls, values: Any) -> VectorReference:
        a, missing = as_vectors(values)
        if a.shape[0] < 2:
            raise DriftError("vector reference needs at least 2 complete rows")
        return cls(values=_readonly(np.ascontiguousarray(a)), n_missing=missing)


Reference = NumericReference | CategoricalReference | VectorReference


def prepare(values: Any, kind: str | None = None) -> Reference:
    """A prepared reference from raw values (or the prepared reference itself)."""
    if isinstance(values, NumericReference | CategoricalReference | VectorReference):
        if kind is not None and kind != values.kind:
            raise DriftError(f"reference is {values.kind}, but kind={kind!r} was asked for")
        return values
    k = kind or infer_kind(values)
    if k == "numeric":
        return NumericReference.from_values(values)
    if k == "categorical":
        return CategoricalReference.from_values(values)
    if k == "vector":
        return VectorReference.from_values(values)
    raise DriftError(f"unknown kind {k!r}; use one of {', '.join(KINDS)}")


