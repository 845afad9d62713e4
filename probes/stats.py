"""Output statistics on the call path: predicted-class counts, confidence and entropy
histograms for classifiers, value histograms for regression and named numbers.

Small outputs (a handful of rows) are read through `tolist()` and plain Python, which is
several times cheaper than numpy's per-call overhead on 10 numbers; large batches use numpy.
Everything here may raise on unreadable outputs: the decorator counts that as a fault.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from probes.buckets import CONFIDENCE_BOUNDS, ENTROPY_BOUNDS, VALUE_BOUNDS
from probes.state import ProbeState, Shard, new_value_slot
from probes.summarize import SummarizeError, as_array

__all__ = ["OutputSpec", "record_output"]

OutputSpec = str | Callable[[Any], Mapping[str, float]] | None
_SMALL_ROWS = 8
_PROB_TOL = 1e-3
_LABELS = tuple(str(i) for i in range(1024))
_isfinite = math.isfinite
_exp = math.exp
_log = math.log


def record_output(st: ProbeState, sh: Shard, out: Any, spec: OutputSpec) -> None:
    """Update `sh` with statistics of `out` per `spec` ("auto", "classifier", "regression"
    or a callable returning {name: number})."""
    if callable(spec):
        named = spec(out)
        if not isinstance(named, Mapping):
            raise SummarizeError(f"outputs callable returned {type(named).__name__}; expected a mapping")
        for name, v in named.items():
            _value(st, sh, str(name), float(v))
        return
    a = as_array(out)
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
            _classifier_batch(st, sh, rows.astype(np.float64, copy=False))
        return
    if kind == "regression":
        if a.ndim == 2 and a.shape[1] > 1:
            for r in a.tolist():
                for i, x in enumerate(r):
                    _value(st, sh, f"value_{i}", x)
        else:
            for x in a.reshape(-1).tolist():
                _value(st, sh, "value", x)
        return
    raise SummarizeError(f"unknown outputs kind {spec!r}")


def _invalid(sh: Shard, reason: str, n: int = 1) -> None:
    sh.invalid[reason] = sh.invalid.get(reason, 0) + n


def _labels(st: ProbeState, sh: Shard, a: np.ndarray[Any, Any]) -> None:
    classes = sh.classes
    guard = st.class_labels
    for c in a.reshape(-1).tolist():
        c = int(c)
        lab = guard.get(_LABELS[c] if 0 <= c < 1024 else str(c))
        classes[lab] = classes.get(lab, 0) + 1


def _class_stats(st: ProbeState, sh: Shard, cls: int, conf: float, ent: float) -> None:
    lab = st.class_labels.get(_LABELS[cls] if cls < 1024 else str(cls))
    sh.classes[lab] = sh.classes.get(lab, 0) + 1
    sh.conf[bisect_left(CONFIDENCE_BOUNDS, conf)] += 1
    sh.conf_sum += conf
    sh.ent[bisect_left(ENTROPY_BOUNDS, ent)] += 1
    sh.ent_sum += ent


def _classifier_row(st: ProbeState, sh: Shard, row: list[float]) -> None:
    total = sum(row)
    if not _isfinite(total):  # NaN/inf anywhere in the row (or an overflowing sum)
        _invalid(sh, "not_finite")
        return
    top = max(row)
    cls = row.index(top)
    if top <= 1.0 and min(row) >= 0.0 and abs(total - 1.0) <= _PROB_TOL:  # probabilities
        ent = -sum([p * _log(p) for p in row if p > 0.0])
        conf = top
    else:  # logits: H = log Σe^(x-top) - Σ p·(x-top)
        shifted = [x - top for x in row]
        exps = [_exp(x) for x in shifted]
        s = sum(exps)
        conf = 1.0 / s
        ent = _log(s) - sum([e * x for e, x in zip(exps, shifted, strict=True)]) * conf
    _class_stats(st, sh, cls, conf, ent if ent > 0.0 else 0.0)


def _classifier_batch(st: ProbeState, sh: Shard, rows: np.ndarray[Any, Any]) -> None:
    finite = np.isfinite(rows).all(axis=1)
    n_bad = int((~finite).sum())
    if n_bad:
        _invalid(sh, "not_finite", n_bad)
        rows = rows[finite]
        if not len(rows):
            return
    mx = rows.max(axis=1, keepdims=True)
    is_prob = (rows.min(axis=1) >= 0.0) & (mx[:, 0] <= 1.0) & (np.abs(rows.sum(axis=1) - 1.0) <= _PROB_TOL)
    shifted = rows - mx
    exps = np.exp(shifted)
    s = exps.sum(axis=1)
    soft_conf = 1.0 / s
    soft_ent = np.log(s) - (exps * shifted).sum(axis=1) * soft_conf
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(rows > 0, rows * np.log(np.where(rows > 0, rows, 1.0)), 0.0)
    prob_ent = -plogp.sum(axis=1)
    conf = np.where(is_prob, mx[:, 0], soft_conf)
    ent = np.maximum(np.where(is_prob, prob_ent, soft_ent), 0.0)
    cls = rows.argmax(axis=1)
    labels, counts = np.unique(cls, return_counts=True)
    for c, n in zip(labels.tolist(), counts.tolist(), strict=True):
        lab = st.class_labels.get(_LABELS[c] if c < 1024 else str(c))
        sh.classes[lab] = sh.classes.get(lab, 0) + n
    _add_hist(sh.conf, np.searchsorted(CONFIDENCE_BOUNDS, conf, side="left"))
    sh.conf_sum += float(conf.sum())
    _add_hist(sh.ent, np.searchsorted(ENTROPY_BOUNDS, ent, side="left"))
    sh.ent_sum += float(ent.sum())


def _add_hist(counts: list[int], idx: np.ndarray[Any, Any]) -> None:
    for i, n in enumerate(np.bincount(idx, minlength=len(counts)).tolist()):
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
