"""Small statistics the service needs on top of `drift.compare`: Holm's step-down adjustment
across a model's features, and the CBPE accuracy estimate for a window of confidences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (family-wise error control); None stays None (no p-value).

    adjusted_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j)) over the sorted p-values, with m the
    number of features that have a p-value. Rejecting where adjusted < alpha is Holm's procedure.
    """
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    m = len(indexed)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def estimate_accuracy(baseline: Any, confidences: Sequence[Any]) -> tuple[float, str] | None:
    """CBPE: the mean calibrated P(correct) over the window's confidences.

    Uses the baseline's calibration (fitted on the labelled benchmark run) when it has one;
    without it, the raw mean confidence (CBPE under the assumption that the model is calibrated).
    Returns (estimate, method) or None when the window holds no usable confidence.
    """
    c = np.asarray([x for x in confidences if isinstance(x, float) and math.isfinite(x)],
                   dtype=np.float64)
    if c.size == 0:
        return None
    calibration = getattr(baseline, "calibration", None)
    if calibration is not None:
        return float(np.mean(calibration.apply(c))), "cbpe"
    return float(np.clip(c, 0.0, 1.0).mean()), "mean_confidence"
