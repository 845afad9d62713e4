"""Between the service and `drift`'s statistics: the CBPE estimate for a window. (Holm across
a model's features is `drift.compare_features`, the one multi-feature verdict.)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from drift.cbpe import estimate_accuracy as cbpe_estimate


def estimate_accuracy(baseline: Any, confidences: Sequence[Any]) -> tuple[float, str] | None:
    """CBPE over the window's confidences through the baseline's calibration (fitted on the
    labelled benchmark run); without one, the mean confidence. (estimate, method) or None."""
    c = [x for x in confidences if isinstance(x, float) and math.isfinite(x)]
    est = cbpe_estimate(c, getattr(baseline, "calibration", None)) if c else None
    return None if est is None else (est.value, est.method)
