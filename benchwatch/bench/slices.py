"""Per-slice accuracy in a bench run: a suite may declare slice columns (metadata
`"slices": {"COLUMN": [one value per row], ...}`), and the accuracy pass's outputs are scored
per value, with the same parity rule as the live alert (scorecard.rules.yml): a slice is
flagged when its accuracy (or, for a binary classifier, its positive rate) is outside 0.8-1.25
of the overall figure, its 95% interval excludes the overall figure, and it has >= 30 rows."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchwatch.bench.suites import Suite, SuiteError
from drift.figures import Figure

PARITY_BAND = (0.8, 1.25)
MIN_EVENTS = 30
Z95 = 1.959964


def slice_columns(suite: Suite) -> dict[str, np.ndarray]:
    """The suite's declared slice columns, each one string per row."""
    raw = suite.metadata.get("slices") or {}
    if not isinstance(raw, Mapping):
        raise SuiteError(f"suite {suite.name!r}: metadata slices must be an object "
                         '{"column": [one value per row]}')
    out = {}
    for col, values in raw.items():
        if not isinstance(values, list) or len(values) != len(suite):
            raise SuiteError(f"suite {suite.name!r}: slice column {col!r} must list one value "
                             f"per row ({len(suite)}), got "
                             f"{len(values) if isinstance(values, list) else type(values).__name__}")
        out[str(col)] = np.array([str(v) for v in values])
    return out


def _parity(rate: float, overall: float, n: int) -> dict[str, Any]:
    """Ratio to the overall rate and whether the slice is outside parity (the alert's rule:
    the band, a score test at the overall rate, and enough events)."""
    ratio = rate / overall if overall > 0 else math.nan
    se = math.sqrt(overall * (1 - overall) / n) if n else math.nan
    z = abs(rate - overall) / se if se > 0 else (math.inf if rate != overall else 0.0)
    outside = not (PARITY_BAND[0] <= ratio <= PARITY_BAND[1]) if math.isfinite(ratio) else False
    return {"ratio": ratio, "z": z,
            "disparity": bool(outside and z > Z95 and n >= MIN_EVENTS)}


def slice_report(outputs: np.ndarray, suite: Suite) -> dict[str, dict[str, dict[str, Any]]]:
    """{column: {value: {n, accuracy, accuracy parity, positive_rate (binary), ...}}}."""
    predicted = np.asarray(outputs).argmax(1)
    correct = predicted == suite.expected
    binary = np.asarray(outputs).shape[1] == 2
    overall_acc = float(correct.mean())
    overall_pos = float((predicted == 1).mean()) if binary else None
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for col, values in slice_columns(suite).items():
        out[col] = {}
        for v in sorted(set(values.tolist())):
            rows = values == v
            n = int(rows.sum())
            acc = float(correct[rows].mean())
            entry: dict[str, Any] = {"n": n, "accuracy": acc,
                                     "accuracy_parity": _parity(acc, overall_acc, n)}
            if overall_pos is not None:
                pos = float((predicted[rows] == 1).mean())
                entry.update(positive_rate=pos, positive_rate_parity=_parity(pos, overall_pos, n))
            out[col][v] = entry
    return out


def _scenario(col: str, value: str) -> str:
    s = re.sub(r"[^a-z0-9_]+", "_", f"slice_{col}_{value}".lower()).strip("_")
    return s[:64]


def slice_figures(report: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[Figure]:
    """`accuracy` (and `positive_rate`) per slice at `outputs`, scenario `slice_<column>_<value>`."""
    out = []
    for col, values in report.items():
        for v, e in values.items():
            out.append(Figure("accuracy", e["accuracy"], "outputs", _scenario(col, v)))
            if "positive_rate" in e:
                out.append(Figure("positive_rate", e["positive_rate"], "outputs", _scenario(col, v)))
    return out
