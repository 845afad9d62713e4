"""Output statistics on the call path: predicted-class counts, confidence and entropy
histograms for classifiers, value histograms for regression and named numbers.

Small outputs (up to 4 rows of a few numbers: a served request is often 1 row) are read through
`tolist()` and plain Python, several times cheaper than numpy's fixed cost per call on 10
numbers; larger ones use a vectorized path with as few numpy calls as it can (no per-row
Python). Both give the same statistics (`tests/probes/test_probe_stats_paths.py`).

The work per call is bounded for any shape:
- an output of more than `MAX_STAT_VALUES` numbers is read through an evenly spaced subsample of
  its rows (a strided view: no copy of the output, and for torch tensors only those rows are
  copied to the host). Each kept row stands for n/m rows: counts are scaled back with
  largest-remainder rounding, so totals (rows, values, classes + invalid) stay exact while the
  split over classes and buckets is the subsample's. 20M regression values went from 4.5 s to
  0.3 ms per call, 20k×1000 logits from 1.2 s to 0.07 ms.
- a row wider than `MAX_STAT_VALUES` (a language model's vocabulary) cannot be subsampled: its
  top-1 class needs every column. It is read on one call per `WIDE_ROW_INTERVAL_S` per (model,
  version) (one row, scaled back to the output's rows like a subsample), and only when it has
  at most `MAX_ROW_VALUES` numbers; every other such call costs a shape check and its rows (values
  for regression) are counted as `invalid{reason="too_wide"}`. So predicted classes + invalid
  still add up to every row, and the split read/skipped is in the metrics. 1 x 152 064 float32
  logits, read whole in plain Python, added 35-50 ms to every call; now a shape check (a few µs),
  and ~1 ms on the one call a second that reads the row.
- regression columns past `_VALUE_COLUMNS` share one `_overflow` histogram (the feature-name
  guard keeps 100 names anyway), so no Python loop runs per column of a wide output.
Everything here may raise on unreadable outputs: the decorator counts that as a fault.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from probes.buckets import CONFIDENCE_GRID, ENTROPY_GRID, VALUE_GRID
from probes.state import OVERFLOW, ProbeState, Shard, new_value_slot
from probes.summarize import (
    _BLAS_MAX_SIZE,
    MAX_ROW_VALUES,
    SummarizeError,
    _row_sums,
    as_array,
    top1_row,
    top1_rows,
)

__all__ = ["MAX_ROW_VALUES", "MAX_STAT_VALUES", "TOO_WIDE", "WIDE_ROW_INTERVAL_S", "OutputSpec", "record_output"]

OutputSpec = str | Callable[[Any], Mapping[str, float]] | None
# Numbers of one output read per call; above, an evenly spaced subsample of rows. 2**14: every
# output up to ~1600 rows of 10 classes is still read whole; the vectorized paths take ~0.1-0.3
# ms on 16k numbers here (the cap, not the output, sets the cost); a bucket share estimated from
# 16k values has a standard error <= 0.4 percentage points per call, and calls add up.
MAX_STAT_VALUES = 16_384
# A row wider than MAX_STAT_VALUES is read on one call per this many seconds per (model, version)
# (a vectorized read of 152 064 float32 logits takes ~0.5-2 ms here: <= 0.2% of one core), the
# others are counted as TOO_WIDE. Time-based, so which calls are read does not depend on content.
WIDE_ROW_INTERVAL_S = 1.0
TOO_WIDE = "too_wide"  # invalid reason: rows (regression: values) of a wide row not read on this call
_SMALL_ROWS = 4  # rows; above this the vectorized path (~10 µs fixed numpy cost) is cheaper
_SMALL_ROW_VALUES = 256  # ... and numbers: plain Python on one row of 256 already costs as much
_VALUE_COLUMNS = 128  # regression columns with their own histogram; the rest share `_overflow`
_SMALL_VALUES = 64  # regression values / labels read in plain Python up to this many
_LABELS = tuple(str(i) for i in range(1024))
_isfinite = math.isfinite
_add = np.add.reduce
# the recording grids (classic + base-2 bounds, probes/exponential.py)
_CONF_GRID = np.array(CONFIDENCE_GRID)
_ENT_GRID = np.array(ENTROPY_GRID)
_VAL_GRID = np.array(VALUE_GRID)
_N_VAL = len(VALUE_GRID) + 1


def record_output(st: ProbeState, sh: Shard, out: Any, spec: OutputSpec) -> None:
    """Update `sh` with statistics of `out` per `spec` ("auto", "classifier", "regression"
    or a callable returning {name: number})."""
    if type(out) is np.ndarray and out.ndim == 2 and (spec == "auto" or spec == "classifier"):
        n, k = out.shape  # the common case first: a numpy batch of class scores
        if k >= 2 and out.dtype.kind in "fiub":
            if n <= _SMALL_ROWS and out.size <= _SMALL_ROW_VALUES:
                for row in out.tolist():
                    _classifier_row(st, sh, row)
            elif out.size <= MAX_STAT_VALUES:
                _classifier_batch(st, sh, out)
            else:
                _bounded(st, sh, out, spec, out.shape)
            return
    if callable(spec):
        named = spec(out)
        if not isinstance(named, Mapping):
            raise SummarizeError(f"outputs callable returned {type(named).__name__}; expected a mapping")
        for name, v in named.items():
            _value(st, sh, str(name), float(v))
        return
    shape = _shape(out)
    if shape and math.prod(shape) > MAX_STAT_VALUES:
        _bounded(st, sh, out, spec, shape)
        return
    _record_array(st, sh, as_array(out), spec)


def _shape(out: Any) -> tuple[int, ...]:
    """The shape of a numpy array, torch tensor (without importing torch) or list of numbers or
    of rows (from its length and its first row's: no walk over the list); () for anything else."""
    if isinstance(out, np.ndarray) or (type(out).__module__.startswith("torch") and hasattr(out, "shape")):
        return tuple(out.shape)
    if isinstance(out, list | tuple) and out:
        first = out[0]
        return (len(out), len(first)) if isinstance(first, list | tuple) else (len(out),)
    return ()


def _integer(out: Any) -> bool:
    """Integer elements (predicted labels) in a numpy array or torch tensor; lists are read as floats."""
    dt = getattr(out, "dtype", None)
    if isinstance(dt, np.dtype):
        return dt.kind in "iu"
    return str(dt).startswith(("torch.int", "torch.uint"))


_wide_next: weakref.WeakKeyDictionary[ProbeState, float] = weakref.WeakKeyDictionary()
_clock = time.monotonic  # module global so that tests can run the wide-row budget on a fake clock


def _wide_turn(st: ProbeState) -> bool:
    """True on the first call of each WIDE_ROW_INTERVAL_S for this (model, version). Not
    locked: threads racing at the same instant may each get a turn (at most one per thread)."""
    now = _clock()
    if now < _wide_next.get(st, -math.inf):
        return False
    _wide_next[st] = now + WIDE_ROW_INTERVAL_S
    return True


def _bounded(st: ProbeState, sh: Shard, out: Any, spec: OutputSpec, shape: tuple[int, ...]) -> None:
    """Statistics of an output of more than MAX_STAT_VALUES numbers in bounded work: an evenly
    spaced subsample of its rows scaled back to all rows; a row wider than MAX_STAT_VALUES only on
    a wide turn (one row read), otherwise its units counted as TOO_WIDE without reading a value."""
    if len(shape) > 2:
        raise SummarizeError(f"output of shape {shape} is not classifier or regression output")
    n = shape[0]
    if len(shape) == 2:
        width = shape[1]
    elif spec == "classifier" and not _integer(out):  # 1-D scores read as a classifier: one row
        n, width = 1, shape[0]
    else:
        width = 1
    if width > MAX_STAT_VALUES:
        if width > MAX_ROW_VALUES or not _wide_turn(st):
            classifier = spec == "classifier" or (spec == "auto" and len(shape) == 2 and width >= 2)
            _invalid(sh, TOO_WIDE, n if classifier else n * width)  # the units a read would count
            return
        cap_rows = 1
    else:
        cap_rows = MAX_STAT_VALUES // max(width, 1)
    if n <= cap_rows:
        _record_array(st, sh, as_array(out), spec)
        return
    step = -(-n // cap_rows)
    sub = out[::step]  # a view: nothing copied for numpy; torch copies only these rows to host
    m = len(sub)
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
        # only non-empty buckets can have a remainder (grids have hundreds of empty cells)
        order = sorted((i for i, x in enumerate(counts) if x), key=lambda i: (-(counts[i] * total % c), i))
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
        if rows.shape[0] <= _SMALL_ROWS and rows.size <= _SMALL_ROW_VALUES:
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
    (bucket index of every value, one bincount over column × bucket). Columns past
    `_VALUE_COLUMNS` go into one `_overflow` histogram in the same bincount: no per-column work
    in Python however wide the output (the name guard would make them `_overflow` anyway)."""
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
    named = min(k, _VALUE_COLUMNS)
    finite = np.isfinite(x)
    ok_per_col = np.count_nonzero(finite, axis=0)
    bad = x.size - int(_add(ok_per_col))
    if bad:
        _invalid(sh, "not_finite", bad)
        x = np.where(finite, x, 0.0)
    col = np.arange(k) if k == named else np.minimum(np.arange(k), named)  # the tail: column `named`
    idx = _VAL_GRID.searchsorted(x, side="left") + col * _N_VAL
    groups = named + (k > named)
    hist = np.bincount(idx[finite] if bad else idx.reshape(-1), minlength=groups * _N_VAL).reshape(groups, _N_VAL)
    col_sums = _add(x, 0)
    sums = col_sums[:named].tolist()
    oks = ok_per_col[:named].tolist()
    if k > named:
        sums.append(float(_add(col_sums[named:])))
        oks.append(int(_add(ok_per_col[named:])))
    guard = st.feature_names
    values = sh.values
    slots: list[Any] = []
    for i, ok in enumerate(oks):
        if not ok:
            slots.append(None)
            continue
        name = OVERFLOW if i == named else guard.get(f"value_{i}" if several else "value")
        slot = values.get(name)
        if slot is None:
            slot = values[name] = new_value_slot()
        slot[1] += sums[i]
        slots.append(slot)
    cols, buckets = np.nonzero(hist)  # one numpy call for every column's non-empty buckets
    for i, j, c in zip(cols.tolist(), buckets.tolist(), hist[cols, buckets].tolist(), strict=True):
        slots[i][0][j] += c


def _classifier_row(st: ProbeState, sh: Shard, row: list[float]) -> None:
    total = sum(row)
    if not _isfinite(total):  # NaN/inf anywhere in the row (or an overflowing sum)
        _invalid(sh, "not_finite")
        return
    cls, conf, ent = top1_row(row, total)
    lab = st.class_labels.get(_LABELS[cls] if cls < 1024 else str(cls))
    classes = sh.classes
    classes[lab] = classes.get(lab, 0) + 1
    sh.conf[bisect_left(CONFIDENCE_GRID, conf)] += 1
    sh.conf_sum += conf
    sh.ent[bisect_left(ENTROPY_GRID, ent)] += 1
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
    _add_hist(sh.conf, _CONF_GRID.searchsorted(conf, side="left"))
    sh.conf_sum += float(_add(conf))
    _add_hist(sh.ent, _ENT_GRID.searchsorted(ent, side="left"))
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
    hist = np.bincount(idx)
    nz = np.flatnonzero(hist)  # the grids have hundreds of cells, a batch fills a few
    for i, n in zip(nz.tolist(), hist[nz].tolist(), strict=True):
        counts[i] += n


def _value(st: ProbeState, sh: Shard, name: str, x: float) -> None:
    if not _isfinite(x):
        _invalid(sh, "not_finite")
        return
    name = st.feature_names.get(name)
    slot = sh.values.get(name)
    if slot is None:
        slot = sh.values[name] = new_value_slot()
    slot[0][bisect_left(VALUE_GRID, x)] += 1
    slot[1] += x
