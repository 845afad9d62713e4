"""benchwatch drift: compare live distributions with benchmark baselines."""

from drift.baseline import Baseline, BaselineError, Provenance, load_dir
from drift.calibration import Calibration
from drift.compare import TESTS, compare, missing_rate_test
from drift.reference import (
    CategoricalReference,
    NumericReference,
    VectorReference,
    infer_kind,
    prepare,
)
from drift.result import DriftError, DriftResult

__all__ = [
    "TESTS",
    "Baseline",
    "BaselineError",
    "Calibration",
    "CategoricalReference",
    "DriftError",
    "DriftResult",
    "NumericReference",
    "Provenance",
    "VectorReference",
    "compare",
    "infer_kind",
    "load_dir",
    "missing_rate_test",
    "prepare",
]
