"""The frozen result of one drift comparison, and drift's error for bad input or configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from probes.errors import ConfigError

__all__ = ["DriftError", "DriftResult"]


class DriftError(ConfigError):
    """Bad input or configuration for drift (a test, a baseline, the drift service); the message
    says what is wrong and what to do."""


@dataclass(frozen=True)
class DriftResult:
    """One comparison of a current sample with a reference.

    `detected` needs both evidence and size: `p_value < alpha` (the shift is real) and
    `effect_size >= min_effect` (it is big enough to matter). `score`/`threshold` are the pair an
    alert compares: the effect size against its floor, or for permutation tests (MMD) the
    statistic against its permutation-calibrated threshold.
    """

    detected: bool
    score: float
    threshold: float
    p_value: float | None
    test: str
    effect_size: float
    effect_metric: str
    kind: str
    n_reference: int
    n_current: int
    alpha: float
    min_effect: float
    statistic: float
    details: Mapping[str, float] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    def explain(self) -> str:
        """One line saying why this is (not) drift, for logs and alert annotations."""
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        verdict = "DRIFT" if self.detected else "no drift"
        why = (
            f"p={p} {'<' if self.significant else '>='} alpha={self.alpha:g}; "
            f"{self.effect_metric}={self.effect_size:.4g} "
            f"{'>=' if self.effect_size >= self.min_effect else '<'} floor {self.min_effect:g}"
        )
        return (
            f"{verdict} ({self.test}, {self.kind}, n_ref={self.n_reference}, "
            f"n_cur={self.n_current}): {why}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "detected": self.detected,
            "score": self.score,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "test": self.test,
            "effect_size": self.effect_size,
            "effect_metric": self.effect_metric,
            "kind": self.kind,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "statistic": self.statistic,
            "details": dict(self.details),
        }
