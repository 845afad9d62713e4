"""Is a baseline's reference large enough for the stated false-alarm rate?

Every drift test declares drift only when its p-value is significant AND its effect size reaches
a floor (`drift.compare`); the floor is what keeps a large or correlated live window from
alarming on differences too small to matter. It only does so if the reference's own sampling
noise cannot reach the floor by itself. With n reference values, the reference's empirical
distribution is further than eps from its population (in Kolmogorov distance) with probability
at most 2 exp(-2 n eps^2) (the Dvoretzky-Kiefer-Wolfowitz inequality). With eps the smallest
default floor (0.05: KS D, Jensen-Shannon, total variation) and that probability held to the
family-wise alpha shared by a model's k features, a reference needs

    n >= ln(2 k / alpha) / (2 eps^2)

values: 738 for one feature, 1 438 for 33 features at alpha = 0.05 (the drift service's
default). A smaller reference is flagged, not refused: `benchwatch baseline build|show` say so,
the drift service exports `benchwatch_drift_reference_small` = 1 for its features, and the drift
page (BenchwatchModelDrift) names the drifted ones in its `reference` annotation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sized
from typing import Any

__all__ = ["EFFECT_FLOOR", "min_reference_size", "reference_size", "small_references"]

EFFECT_FLOOR = 0.05  # the smallest default effect floor on a [0, 1] distance (drift.compare.TESTS)


def min_reference_size(n_features: int, alpha: float = 0.05, floor: float = EFFECT_FLOOR) -> int:
    """Reference values a feature needs so that reference noise alone reaches `floor` with
    probability at most alpha / n_features (see the module docstring)."""
    if n_features < 1 or not 0 < alpha < 1 or not 0 < floor <= 1:
        raise ValueError(f"need n_features >= 1, alpha in (0, 1), floor in (0, 1]; got "
                         f"{n_features}, {alpha}, {floor}")
    return math.ceil(math.log(2 * n_features / alpha) / (2 * floor * floor))


def reference_size(reference: Any) -> int:
    """Values a reference holds (a prepared reference's `n`, or the length of raw values)."""
    n = getattr(reference, "n", None)
    if isinstance(n, int):
        return n
    return len(reference) if isinstance(reference, Sized) else 0


def small_references(references: Mapping[str, Any], alpha: float = 0.05
                     ) -> dict[str, tuple[int, int]]:
    """feature -> (values, values needed) for the features whose reference is too small."""
    if not references:
        return {}
    needed = min_reference_size(len(references), alpha)
    sizes = {name: reference_size(ref) for name, ref in references.items()}
    return {name: (n, needed) for name, n in sizes.items() if n < needed}
