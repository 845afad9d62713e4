"""Between the service and `drift`'s statistics: Holm's adjustment across a
model's features (some tests have no p-value) and the CBPE estimate for a window."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from drift.cbpe import estimate_accuracy as cbpe_estimate
from drift.features import holm


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (family-wise error control) over the features that have one;
    None stays None. Rejecting where adjusted < alpha is Holm's step-down procedure."""
    tested = [(i, float(p)) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    adjusted = holm([p for _, p in tested])
    out: list[float | None] = [None] * len(p_values)
    for (i, _), p in zip(tested, adjusted, strict=True):
        out[i] = float(p)
    return out


def estimate_accuracy(baseline: Any, confidences: Sequence[Any]) -> tuple[float, str] | None:
    """CBPE over the window's confidences through the baseline's calibration (fitted on the
    labelled benchmark run); without one, the mean confidence. (estimate, method) or None."""
    c = [x for x in confidences if isinstance(x, float) and math.isfinite(x)]
    est = cbpe_estimate(c, getattr(baseline, "calibration", None)) if c else None
    return None if est is None else (est.value, est.method)
