"""Output statistics on the call path: predicted-class counts, confidence and entropy
histograms for classifiers, value histograms for regression and named numbers.

Small outputs (up to 4 rows: a served request is often 1 row) are read through `tolist()` and
plain Python, several times cheaper than numpy's fixed cost per call on 10 numbers; larger
batches use a vectorized path with as few numpy calls as it can (no per-row Python). Both give
the same statistics (`tests/probes/test_probe_stats_paths.py`).

The work per call is bounded: an array output of more than `MAX_STAT_VALUES` numbers is read
through an evenly spaced subsample of its rows (a strided view: no copy of the output, and for
torch tensors only those rows are copied to the host). Each kept row stands for n/m rows: counts
are scaled back with largest-remainder rounding, so totals (rows, values, classes + invalid) stay
exact while the split over classes and buckets is the subsample's. Measured here: 20M regression
values went from 4.5 s to 0.3 ms per call, 20k×1000 logits from 1.2 s to 0.07 ms.
Everything here may raise on unreadable outputs: the decorator counts that as a fault.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from probes.buckets import CONFIDENCE_BOUNDS, ENTROPY_BOUNDS, VALUE_BOUNDS
from probes.state import ProbeState, Shard, new_value_slot
from probes.summarize import (
    _BLAS_MAX_SIZE,
    SummarizeError,
    _row_sums,
    as_array,
    top1_row,
    top1_rows,
)

__all__ = ["MAX_STAT_VALUES", "OutputSpec", "record_output"]

OutputSpec = str | Callable[[Any], Mapping[str, float]] | None
# Numbers of one output read per call; above, an evenly spaced subsample of rows. 2**14: every
# output up to ~1600 rows of 10 classes is still read whole; the vectorized paths take ~0.1-0.3
# ms on 16k numbers here (the cap, not the output, sets the cost); a bucket share estimated from
# 16k values has a standard error <= 0.4 percentage points per call, and calls add up.
MAX_STAT_VALUES = 16_384
_SMALL_ROWS = 4  # rows; above this the vectorized path (~10 µs fixed numpy cost) is cheaper
_SMALL_VALUES = 64  # regression values / labels read in plain Python up to this many
_LABELS = tuple(str(i) for i in range(1024))
_isfinite = math.isfinite
_add = np.add.reduce
_CONF_BOUNDS = np.array(CONFIDENCE_BOUNDS)
_ENT_BOUNDS = np.array(ENTROPY_BOUNDS)
_VAL_BOUNDS = np.array(VALUE_BOUNDS)
_N_VAL = len(VALUE_BOUNDS) + 1


def record_output(st: ProbeState, sh: Shard, out: Any, spec: OutputSpec) -> None:
    """Update `sh` with statistics of `out` per `spec` ("auto", "classifier", "regression"
    or a callable returning {name: number})."""
    if type(out) is np.ndarray and out.ndim == 2 and (spec == "auto" or spec == "classifier"):
        n, k = out.shape  # the common case first: a numpy batch of class scores
        if k >= 2 and out.dtype.kind in "fiub":
            if n <= _SMALL_ROWS:
                for row in out.tolist():
                    _classifier_row(st, sh, row)
            elif out.size <= MAX_STAT_VALUES:
                _classifier_batch(st, sh, out)
            else:
                _subsampled(st, sh, out, spec)
            return
    if callable(spec):
        named = spec(out)
        if not isinstance(named, Mapping):
            raise SummarizeError(f"outputs callable returned {type(named).__name__}; expected a mapping")
        for name, v in named.items():
            _value(st, sh, str(name), float(v))
        return
    if _is_array(out) and out.ndim >= 1 and math.prod(out.shape) > MAX_STAT_VALUES:
        _subsampled(st, sh, out, spec)
        return
    _record_array(st, sh, as_array(out), spec)


def _is_array(out: Any) -> bool:
    """numpy arrays and torch tensors (without importing torch): what can be sliced as a view."""
    return isinstance(out, np.ndarray) or (type(out).__module__.startswith("torch") and hasattr(out, "shape"))


def _subsampled(st: ProbeState, sh: Shard, out: Any, spec: OutputSpec) -> None:
    """Statistics of an evenly spaced subsample of `out`'s rows, scaled back to all rows."""
    shape = tuple(out.shape)
    if len(shape) > 2:
        raise SummarizeError(f"output of shape {shape} is not classifier or regression output")
    n = shape[0]
    per_row = shape[1] if len(shape) == 2 and shape[1] else 1
    cap_rows = max(1, MAX_STAT_VALUES // per_row)  # a single row wider than the cap is read whole
    if n <= cap_rows:
        _record_array(st, sh, as_array(out), spec)
        return
    step = -(-n // cap_rows)
    sub = out[::step]  # a view: nothing copied for numpy; torch copies only these rows to host
    m = int(sub.shape[0])
    scratch = Shard(None)
    _record_array(st, scratch, as_array(sub), spec)
    _merge_scaled(scratch, sh, n, m)


def _apportion(counts: list[int], total: int) -> list[int]:
    """`counts` scaled to sum to `total`: floors plus one for the largest remainders
    (ties to the lower index), so every scaled total is an exact integer."""
    c = sum(counts)
    if c == 0:
        return [0] * len(counts)
    out = [x * total // c for x in counts]
    left = total - sum(out)
    if left:
        order = sorted(range(len(counts)), key=lambda i: (-(counts[i] * total % c), i))
        for i in order[:left]:
            out[i] += 1
    return out


def _merge_scaled(src: Shard, dst: Shard, n: int, m: int) -> None:
    """Add `src` (statistics of m of n rows) into `dst` as if all n rows had been read. Every
    unit read (a classifier row, a label, a regression value) landed in exactly one class,
    invalid reason or value bucket: those are apportioned together to exactly n/m times their
    total; the confidence/entropy histograms then to the scaled number of classified rows."""
    keys: list[tuple[int, str, int]] = []
    counts: list[int] = []
    for lab, c in src.classes.items():
        keys.append((0, lab, 0))
        counts.append(c)
    for reason, c in src.invalid.items():
        keys.append((1, reason, 0))
        counts.append(c)
    for name, (buckets, _) in src.values.items():
        for i, c in enumerate(buckets):
            if c:
                keys.append((2, name, i))
                counts.append(c)
    units = sum(counts)
    scaled = _apportion(counts, (units * n + m // 2) // m)
    classified = 0
    value_counts: dict[str, int] = {}
    for (what, key, i), c in zip(keys, scaled, strict=True):
        if what == 0:
            dst.classes[key] = dst.classes.get(key, 0) + c
            classified += c
        elif what == 1:
            dst.invalid[key] = dst.invalid.get(key, 0) + c
        else:
            slot = dst.values.get(key)
            if slot is None:
                slot = dst.values[key] = new_value_slot()
            slot[0][i] += c
            value_counts[key] = value_counts.get(key, 0) + c
    for name, (buckets, total) in src.values.items():
        read = sum(buckets)
        if read:  # the sum scaled like the count: the mean is the subsample's
            dst.values[name][1] += total * value_counts[name] / read
    read = sum(src.conf)
    if read:
        for i, c in enumerate(_apportion(src.conf, classified)):
            dst.conf[i] += c
        for i, c in enumerate(_apportion(src.ent, classified)):
            dst.ent[i] += c
        dst.conf_sum += src.conf_sum * classified / read
        dst.ent_sum += src.ent_sum * classified / read


def _record_array(st: ProbeState, sh: Shard, a: np.ndarray[Any, Any], spec: OutputSpec) -> None:
    if a.ndim > 2 or a.dtype.kind not in "fiub":
        raise SummarizeError(f"output of shape {a.shape} / dtype {a.dtype} is not classifier or regression output")
    kind = spec
    if kind == "auto":
        if a.ndim == 2 and a.shape[1] >= 2:
            kind = "classifier"
        elif a.ndim == 1 and a.dtype.kind in "iu":
            _labels(st, sh, a)
            return
        else:
            kind = "regression"
    if kind == "classifier":
        if a.ndim <= 1 and a.dtype.kind in "iu":
            _labels(st, sh, np.atleast_1d(a))
            return
        rows = a.reshape(1, -1) if a.ndim == 1 else a
        if rows.shape[1] < 2:
            raise SummarizeError(f"classifier output needs >= 2 columns, got shape {a.shape}")
        if rows.shape[0] <= _SMALL_ROWS:
            for row in rows.tolist():
                _classifier_row(st, sh, row)
        else:
            _classifier_batch(st, sh, rows)
        return
    if kind == "regression":
        _regression(st, sh, a)
        return
    raise SummarizeError(f"unknown outputs kind {spec!r}")


def _invalid(sh: Shard, reason: str, n: int = 1) -> None:
    sh.invalid[reason] = sh.invalid.get(reason, 0) + n


def _labels(st: ProbeState, sh: Shard, a: np.ndarray[Any, Any]) -> None:
    classes = sh.classes
    guard = st.class_labels
    flat = a.reshape(-1)
    if flat.size <= _SMALL_VALUES:
        for c in flat.tolist():
            c = int(c)
            lab = guard.get(_LABELS[c] if 0 <= c < 1024 else str(c))
            classes[lab] = classes.get(lab, 0) + 1
        return
    found, counts = np.unique(flat, return_counts=True)
    for c, m in zip(found.tolist(), counts.tolist(), strict=True):
        c = int(c)
        lab = guard.get(_LABELS[c] if 0 <= c < 1024 else str(c))
        classes[lab] = classes.get(lab, 0) + m


def _regression(st: ProbeState, sh: Shard, a: np.ndarray[Any, Any]) -> None:
    """Value histograms per output column: `value` for one column, `value_0`, ... for several.
    Up to `_SMALL_VALUES` numbers in plain Python, beyond that in a few whole-array numpy calls
    (bucket index of every value, one bincount over column × bucket)."""
    several = a.ndim == 2 and a.shape[1] > 1
    if a.size <= _SMALL_VALUES:
        if several:
            for r in a.tolist():
                for i, x in enumerate(r):
                    _value(st, sh, f"value_{i}", x)
        else:
            for x in a.reshape(-1).tolist():
                _value(st, sh, "value", x)
        return
    x = (a if several else a.reshape(-1, 1)).astype(np.float64, copy=False)
    k = x.shape[1]
    finite = np.isfinite(x)
    ok_per_col = np.count_nonzero(finite, axis=0)
    bad = x.size - int(_add(ok_per_col))
    if bad:
        _invalid(sh, "not_finite", bad)
        x = np.where(finite, x, 0.0)
    idx = _VAL_BOUNDS.searchsorted(x, side="left") + np.arange(k) * _N_VAL
    hist = np.bincount(idx[finite] if bad else idx.reshape(-1), minlength=k * _N_VAL).reshape(k, _N_VAL)
    sums = _add(x, 0).tolist()
    guard = st.feature_names
    values = sh.values
    for i, ok in enumerate(ok_per_col.tolist()):
        if not ok:
            continue
        name = guard.get(f"value_{i}" if several else "value")
        slot = values.get(name)
        if slot is None:
            slot = values[name] = new_value_slot()
        counts = slot[0]
        row = hist[i]
        for j in np.flatnonzero(row).tolist():
            counts[j] += int(row[j])
        slot[1] += sums[i]


def _classifier_row(st: ProbeState, sh: Shard, row: list[float]) -> None:
    total = sum(row)
    if not _isfinite(total):  # NaN/inf anywhere in the row (or an overflowing sum)
        _invalid(sh, "not_finite")
        return
    cls, conf, ent = top1_row(row, total)
    lab = st.class_labels.get(_LABELS[cls] if cls < 1024 else str(cls))
    classes = sh.classes
    classes[lab] = classes.get(lab, 0) + 1
    sh.conf[bisect_left(CONFIDENCE_BOUNDS, conf)] += 1
    sh.conf_sum += conf
    sh.ent[bisect_left(ENTROPY_BOUNDS, ent)] += 1
    sh.ent_sum += ent


def _classifier_batch(st: ProbeState, sh: Shard, rows: np.ndarray[Any, Any]) -> None:
    """The same statistics as `_classifier_row`, vectorized. On batches of tens of rows numpy's
    fixed cost per call dominates, so: row reductions as a BLAS product with ones (a quarter of
    `sum(axis=1)`'s cost), `top1_rows`, and histograms/class counts added from `bincount`."""
    rows = rows.astype(np.float64, copy=False)
    n, k = rows.shape
    small = rows.size <= _BLAS_MAX_SIZE  # big products would wake BLAS threads: use ufuncs
    ones = _ones(k)
    total = _row_sums(rows, ones, small)
    finite = np.isfinite(total)  # a NaN/inf anywhere makes the row's sum non-finite
    n_ok = int(np.count_nonzero(finite))
    if n_ok < n:
        _invalid(sh, "not_finite", n - n_ok)
        if not n_ok:
            return
        rows, total = rows[finite], total[finite]
    cls, conf, ent = top1_rows(rows, total, ones, small)
    labels = st.class_labels
    classes = sh.classes
    counts = np.bincount(cls)
    if len(counts) <= 64:
        pairs: Any = enumerate(counts.tolist())
    else:
        nz = np.flatnonzero(counts)
        pairs = zip(nz.tolist(), counts[nz].tolist(), strict=True)
    for c, m in pairs:
        if m:
            lab = labels.get(_LABELS[c] if c < 1024 else str(c))
            classes[lab] = classes.get(lab, 0) + m
    _add_hist(sh.conf, _CONF_BOUNDS.searchsorted(conf, side="left"))
    sh.conf_sum += float(_add(conf))
    _add_hist(sh.ent, _ENT_BOUNDS.searchsorted(ent, side="left"))
    sh.ent_sum += float(_add(ent))


@functools.lru_cache(maxsize=32)
def _ones(k: int) -> np.ndarray[Any, Any]:
    a = np.ones(k)
    a.flags.writeable = False
    return a


def _add_hist(counts: list[int], idx: np.ndarray[Any, Any]) -> None:
    if len(idx) <= 16:
        for i in idx.tolist():
            counts[i] += 1
        return
    for i, n in enumerate(np.bincount(idx).tolist()):
        if n:
            counts[i] += n


def _value(st: ProbeState, sh: Shard, name: str, x: float) -> None:
    if not _isfinite(x):
        _invalid(sh, "not_finite")
        return
    name = st.feature_names.get(name)
    slot = sh.values.get(name)
    if slot is None:
        slot = sh.values[name] = new_value_slot()
    slot[0][bisect_left(VALUE_BOUNDS, x)] += 1
    slot[1] += x
