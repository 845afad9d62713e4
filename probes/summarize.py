"""Turn a model's output into named features, one dict per output row.

The probe's output statistics, the sampled summaries for drift, and the bench runner's baselines
all use `summarize_output`, so live and baseline features have the same names:
classifier rows -> `{"predicted_class": "3", "confidence": 0.93, "entropy": 0.21}` (entropy in
nats, confidence = top-1 probability); regression rows -> `{"value": 1.7}` (or `value_0`,
`value_1`, ... for several outputs per row). Rows with NaN/inf give `None` features.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from probes.samples import Feature

__all__ = ["Kind", "SummarizeError", "as_array", "summarize_output"]

Kind = Literal["auto", "classifier", "regression"]
_KINDS = ("auto", "classifier", "regression")
_SMALL = 64  # up to this many numbers, plain Python beats numpy's per-call overhead
_PROB_TOL = 1e-3


class SummarizeError(ValueError):
    """The output cannot be read as classifier or regression output; says what was expected."""


def as_array(output: Any) -> np.ndarray[Any, Any]:
    """A numpy view of a numpy array, torch tensor, number or (nested) list of numbers."""
    if isinstance(output, np.ndarray):
        return output
    mod = type(output).__module__
    if mod.startswith("torch"):
        # detach/cpu: the probe must not keep the graph alive or fail on CUDA tensors
        return np.asarray(output.detach().cpu().float().numpy())
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
    top = max(row)
    if not math.isfinite(top) or not all(math.isfinite(x) for x in row):
        return {"predicted_class": None, "confidence": None, "entropy": None}
    cls = row.index(top)
    lo = min(row)
    total = math.fsum(row)
    if lo >= 0.0 and top <= 1.0 and abs(total - 1.0) <= _PROB_TOL:
        probs = row
    else:  # logits: softmax, shifted by the max for stability
        exps = [math.exp(x - top) for x in row]
        s = math.fsum(exps)
        probs = [e / s for e in exps]
    entropy = -math.fsum(p * math.log(p) for p in probs if p > 0.0)
    return {"predicted_class": str(cls), "confidence": probs[cls], "entropy": max(entropy, 0.0)}


def _classify_rows(rows: np.ndarray[Any, Any]) -> list[dict[str, Feature]]:
    finite = np.isfinite(rows).all(axis=1)
    safe = np.where(finite[:, None], rows, 0.0)
    is_prob = (
        (safe.min(axis=1) >= 0.0) & (safe.max(axis=1) <= 1.0) & (np.abs(safe.sum(axis=1) - 1.0) <= _PROB_TOL)
    )
    shifted = safe - safe.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    soft = exps / exps.sum(axis=1, keepdims=True)
    probs = np.where(is_prob[:, None], safe, soft)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    entropy = np.maximum(-plogp.sum(axis=1), 0.0)
    cls = rows.argmax(axis=1) if finite.all() else safe.argmax(axis=1)
    conf = probs[np.arange(len(rows)), cls]
    out: list[dict[str, Feature]] = []
    for ok, c, p, h in zip(finite.tolist(), cls.tolist(), conf.tolist(), entropy.tolist(), strict=True):
        if ok:
            out.append({"predicted_class": str(c), "confidence": p, "entropy": h})
        else:
            out.append({"predicted_class": None, "confidence": None, "entropy": None})
    return out
