"""benchwatch drift: compare live distributions with benchmark baselines.

`compare(reference, current)` tests one feature; `compare_features` many (with Holm/BH control
and a ranking); `Baseline` stores references and figures safely; `StreamDetector` watches a
stream with a calibrated false-alarm budget; `AccuracyMonitor` estimates accuracy without labels
(CBPE) and realizes it when labels arrive.

The statistics need SciPy (the `drift` extra): without it, importing the package raises
`probes.errors.MissingExtraError` naming that extra.
"""

from drift.baseline import Baseline, BaselineError, Provenance, load_dir
from drift.calibration import Calibration
from drift.cbpe import AccuracyEstimate, AccuracyMonitor, AccuracyReport, estimate_accuracy
from drift.compare import TESTS, compare, missing_rate_test
from drift.features import FeatureComparison, FeatureDrift, compare_features
from drift.figures import Figure
from drift.reference import (
    CategoricalReference,
    NumericReference,
    VectorReference,
    infer_kind,
    prepare,
)
from drift.result import DriftError, DriftResult
from drift.sketch import BinSketch
from drift.streaming import StreamDetector, StreamState

__all__ = [
    "TESTS",
    "AccuracyEstimate",
    "AccuracyMonitor",
    "AccuracyReport",
    "Baseline",
    "BaselineError",
    "BinSketch",
    "Calibration",
    "CategoricalReference",
    "DriftError",
    "DriftResult",
    "FeatureComparison",
    "FeatureDrift",
    "Figure",
    "NumericReference",
    "Provenance",
    "StreamDetector",
    "StreamState",
    "VectorReference",
    "compare",
    "compare_features",
    "estimate_accuracy",
    "infer_kind",
    "load_dir",
    "missing_rate_test",
    "prepare",
]
