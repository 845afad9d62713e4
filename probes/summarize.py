"""Turn a model's output into named features, one dict per output row.

The probe's output statistics, the sampled summaries for drift, and the bench runner's baselines
all use `summarize_output`, so live and baseline features have the same names:
classifier rows -> `{"predicted_class": "3", "confidence": 0.93, "entropy": 0.21}` (entropy in
nats, confidence = top-1 probability); regression rows -> `{"value": 1.7}` (or `value_0`,
`value_1`, ... for several outputs per row). Rows with NaN/inf give `None` features.
"""

from __future__ import annotations

import math
from operator import mul as _mul
from typing import Any, Literal

import numpy as np

from probes.errors import BenchwatchError
from probes.samples import Feature

__all__ = ["MAX_ROW_VALUES", "Kind", "SummarizeError", "as_array", "summarize_output"]

Kind = Literal["auto", "classifier", "regression"]
# The widest output row the probe ever reads, in numbers: 2**18, so one row of the largest
# language-model vocabularies (152 064, 256 000) fits. A wider row is counted, never read (the
# statistics count it as `too_wide`, a sampled call drops its samples as `too_wide`): reading
# 1M numbers costs ~1-2 ms here even vectorized, more than the probe may add to a call.
MAX_ROW_VALUES = 2**18
_KINDS = ("auto", "classifier", "regression")
_SMALL = 64  # up to this many numbers, plain Python beats numpy's per-call overhead
_PROB_TOL = 1e-3
_TINY = 1e-300  # log floor: p = 0 gives 0·log(1e-300) = 0, as `p > 0` skips it row by row
_BLAS_MAX_SIZE = 4096  # elements; OpenBLAS may start threads for larger products
_LABELS = tuple(str(i) for i in range(1024))
_isfinite = math.isfinite
_exp = math.exp
_log = math.log
_TORCH_NUMPY_FLOATS = {"torch.float32", "torch.float64"}


class SummarizeError(BenchwatchError, ValueError):
    """The output cannot be read as classifier or regression output; says what was expected."""


def as_array(output: Any) -> np.ndarray[Any, Any]:
    """A numpy view of a numpy array, torch tensor, number or (nested) list of numbers."""
    if isinstance(output, np.ndarray):
        return output
    mod = type(output).__module__
    if mod.startswith("torch"):
        # detach/cpu: the probe must not keep the graph alive or fail on CUDA tensors.
        # Integer tensors stay integer (predicted labels); floats numpy lacks (bfloat16) or
        # that cost a copy per op (float16) become float32; float32/float64 pass as they are.
        t = output.detach().cpu()
        if t.is_floating_point() and str(t.dtype) not in _TORCH_NUMPY_FLOATS:
            t = t.float()
        return np.asarray(t.numpy())
    if isinstance(output, (list, tuple, int, float, np.generic)) and not isinstance(output, bool):
        try:
            return np.asarray(output, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise SummarizeError(f"output is not numeric ({e}); pass outputs=callable to summarize it") from e
    raise SummarizeError(
        f"cannot summarize a {type(output).__name__}: expected a numpy array, torch tensor or numbers; "
        "pass outputs=callable returning {name: number} for other outputs"
    )


def summarize_output(output: Any, kind: Kind = "auto") -> list[dict[str, Feature]]:
    """One feature dict per output row. `kind="auto"`: 2-D with >= 2 columns is a classifier
    (logits or probabilities), integer 1-D arrays are predicted labels, anything else regression."""
    if kind not in _KINDS:
        raise SummarizeError(f"kind must be one of {_KINDS}, got {kind!r}")
    a = as_array(output)
    if a.dtype.kind not in "fiub":
        raise SummarizeError(f"output dtype {a.dtype} is not numeric")
    if a.ndim > 2:
        raise SummarizeError(f"output has shape {a.shape}; expected (rows,) or (rows, columns)")
    if kind == "auto":
        if a.ndim == 2 and a.shape[1] >= 2:
            kind = "classifier"
        elif a.ndim == 1 and a.dtype.kind in "iu":
            return [{"predicted_class": str(int(x))} for x in a.tolist()]
        else:
            kind = "regression"
    if kind == "classifier":
        if a.ndim == 0 or (a.ndim == 1 and a.dtype.kind in "iu"):
            return [{"predicted_class": str(int(x))} for x in np.atleast_1d(a).tolist()]
        rows = a.reshape(1, -1) if a.ndim == 1 else a
        if rows.shape[1] < 2:
            raise SummarizeError(f"classifier output needs >= 2 columns, got shape {a.shape}")
        if rows.size <= _SMALL:
            return [_classify_row(r) for r in rows.tolist()]
        return _classify_rows(rows.astype(np.float64, copy=False))
    # regression
    if a.ndim <= 1:
        return [{"value": _finite(x)} for x in np.atleast_1d(a).tolist()]
    if a.shape[1] == 1:
        return [{"value": _finite(r[0])} for r in a.tolist()]
    return [{f"value_{i}": _finite(x) for i, x in enumerate(r)} for r in a.tolist()]


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _classify_row(row: list[float]) -> dict[str, Feature]:
    total = sum(row)  # finite exactly when every value is (or the sum overflowed: check)
    if not _isfinite(total) and not all(map(_isfinite, row)):
        return {"predicted_class": None, "confidence": None, "entropy": None}
    cls, conf, entropy = top1_row(row, total)
    return {"predicted_class": _LABELS[cls] if cls < 1024 else str(cls), "confidence": conf,
            "entropy": entropy}


def top1_row(row: list[float], total: float) -> tuple[int, float, float]:
    """Predicted class, top-1 probability and entropy (nats, >= 0) of one row of finite
    probabilities or logits (`total` = its sum). The probe runs this on the serving thread:
    map() over C functions where it is faster than a comprehension, and
    H = log Z - Σ e^(x-top)·(x-top) / Z with Z = Σ e^(x-top), the same value as -Σ p·log p
    without dividing every e by Z."""
    top = max(row)
    cls = row.index(top)
    if top <= 1.0 and min(row) >= 0.0 and abs(total - 1.0) <= _PROB_TOL:
        conf = top
        entropy = -sum([p * _log(p) for p in row if p > 0.0])
    else:  # logits: softmax, shifted by the max for stability
        shifted = [x - top for x in row]
        exps = list(map(_exp, shifted))
        z = sum(exps)
        conf = 1.0 / z
        entropy = _log(z) - sum(map(_mul, exps, shifted)) * conf
    return cls, conf, entropy if entropy > 0.0 else 0.0  # rounding on a one-hot row (or NaN)


def _classify_rows(rows: np.ndarray[Any, Any]) -> list[dict[str, Feature]]:
    """`_classify_row` on every row, vectorized with few numpy calls (their fixed cost is most
    of the time on a sampled batch of tens of rows)."""
    x = rows.astype(np.float64, copy=False)
    n, k = x.shape
    small = x.size <= _BLAS_MAX_SIZE  # big products would wake BLAS threads: use ufuncs
    ones = np.ones(k)
    total = _row_sums(x, ones, small)
    finite = np.isfinite(total)
    all_finite = bool(finite.all())
    if not all_finite:  # a non-finite value, or only an overflowing sum
        finite = np.isfinite(x).all(axis=1)
        x = np.where(finite[:, None], x, 0.0)
    cls, conf, ent = top1_rows(x, total, ones, small)
    names = _LABELS if k <= len(_LABELS) else tuple(str(i) for i in range(k))
    out = [{"predicted_class": names[c], "confidence": p, "entropy": h}
           for c, p, h in zip(cls.tolist(), conf.tolist(), ent.tolist(), strict=True)]
    if not all_finite:
        for i in np.flatnonzero(~finite).tolist():
            out[i] = {"predicted_class": None, "confidence": None, "entropy": None}
    return out


def top1_rows(x: np.ndarray[Any, Any], total: np.ndarray[Any, Any], ones: np.ndarray[Any, Any],
              small: bool) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """`top1_row` on every row of a float64 matrix (`total` = its row sums, `ones`/`small` as
    for `_row_sums`), with few numpy calls: the max read at the argmax, and the probability
    branch only where some row can be probabilities."""
    n = len(x)
    cls = x.argmax(axis=1)
    mx = x[np.arange(n), cls]
    is_prob = mx <= 1.0
    if is_prob.any():
        is_prob &= np.abs(total - 1.0) <= _PROB_TOL
        is_prob &= np.minimum.reduce(x, 1) >= 0.0
    n_prob = int(np.count_nonzero(is_prob))
    conf: np.ndarray[Any, Any]
    ent: np.ndarray[Any, Any]
    if n_prob < n:
        shifted = x - mx[:, None]
        exps = np.exp(shifted)
        z = _row_sums(exps, ones, small)
        conf = 1.0 / z
        exps *= shifted
        ent = np.log(z) - _row_sums(exps, ones, small) * conf
    if n_prob:
        prob_ent = -_row_sums(x * np.log(np.maximum(x, _TINY)), ones, small)
        if n_prob == n:
            conf, ent = mx, prob_ent
        else:
            conf = np.where(is_prob, mx, conf)
            ent = np.where(is_prob, prob_ent, ent)
    np.maximum(ent, 0.0, out=ent)
    return cls, conf, ent


def _row_sums(a: np.ndarray[Any, Any], ones: np.ndarray[Any, Any], small: bool) -> np.ndarray[Any, Any]:
    """Σ over each row: a matrix-vector product with ones on small arrays (a quarter of
    `sum(axis=1)`'s fixed cost there), the plain reduction on large ones."""
    return a.dot(ones) if small else np.add.reduce(a, 1)  # type: ignore[no-any-return]
