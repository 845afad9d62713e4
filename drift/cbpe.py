"""Accuracy without labels (CBPE), and realized accuracy when labels arrive later.

CBPE (confidence-based performance estimation): if confidences are calibrated, the expected
accuracy of a window is the mean calibrated P(correct). The calibration map comes from the
labelled benchmark run (`drift.Calibration`, stored in the baseline); without one, the raw top-1
confidence is used as P(correct). Labels posted later by request id give the realized accuracy
beside the estimate. All state is bounded (windows and the pending-id table have fixed sizes).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from drift.calibration import Calibration
from drift.result import DriftError

__all__ = ["AccuracyEstimate", "AccuracyMonitor", "AccuracyReport", "estimate_accuracy"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class AccuracyEstimate:
    value: float
    lower: float  # 95% interval
    upper: float
    n: int
    method: str  # "cbpe" (calibrated), "mean_confidence" (uncalibrated), "realized" (labels)


@dataclass(frozen=True)
class AccuracyReport:
    estimated: AccuracyEstimate | None  # over the recent predictions
    realized: AccuracyEstimate | None  # over the recent labelled predictions
    estimated_on_labelled: AccuracyEstimate | None  # CBPE on exactly those labelled predictions
    pending: int  # predictions waiting for a label
    unmatched_labels: int  # labels whose request id was unknown or already evicted
    evicted: int  # predictions dropped from the pending table before a label came


def _clean(confidences: np.ndarray) -> np.ndarray:
    c = np.asarray(confidences, dtype=np.float64)
    c = c[np.isfinite(c)]
    return np.clip(c, 0.0, 1.0)


def estimate_accuracy(
    confidences: np.ndarray | list[float], calibration: Calibration | None = None
) -> AccuracyEstimate | None:
    """CBPE for one window: mean P(correct), with the 95% interval of a sum of Bernoullis."""
    c = _clean(np.asarray(confidences, dtype=np.float64))
    if c.size == 0:
        return None
    p = calibration.apply(c) if calibration is not None else c
    return _from_probabilities(p, "cbpe" if calibration is not None else "mean_confidence")


def _from_probabilities(p: np.ndarray, method: str) -> AccuracyEstimate:
    n = p.size
    mean = float(p.mean())
    half = Z95 * math.sqrt(float(np.sum(p * (1 - p)))) / n
    return AccuracyEstimate(mean, max(0.0, mean - half), min(1.0, mean + half), n, method)


def _wilson(hits: int, n: int) -> AccuracyEstimate:
    p = hits / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return AccuracyEstimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "realized")


class AccuracyMonitor:
    """Per (model, version): record predictions, accept late labels, report both accuracies.

    window: how many recent predictions (and labelled outcomes) the figures cover.
    max_pending: predictions remembered while waiting for a label (oldest evicted first).
    Thread-safe: the service's HTTP threads and its evaluation loop may share one.
    """

    def __init__(self, calibration: Calibration | None = None, *, window: int = 5000,
                 max_pending: int = 100_000) -> None:
        if window < 1 or max_pending < 1:
            raise DriftError("window and max_pending must be >= 1")
        self.calibration = calibration
        self.window = window
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._recent: deque[float] = deque(maxlen=self.window)  # calibrated P(correct)
            self._labelled: deque[tuple[float, bool]] = deque(maxlen=self.window)
            self._pending: OrderedDict[str, tuple[str, float]] = OrderedDict()
            self._unmatched = 0
            self._evicted = 0

    def _p_correct(self, confidence: float) -> float:
        c = min(1.0, max(0.0, confidence))
        if self.calibration is None:
            return c
        return float(self.calibration.apply(np.array([c]))[0])

    def record(self, request_id: str, predicted: str, confidence: float) -> None:
        """One served prediction; non-finite confidences are ignored (nothing to estimate)."""
        if not isinstance(confidence, int | float) or not math.isfinite(confidence):
            return
        p = self._p_correct(float(confidence))
        with self._lock:
            self._recent.append(p)
            self._pending[str(request_id)] = (str(predicted), p)
            self._pending.move_to_end(str(request_id))
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                self._evicted += 1

    def label(self, request_id: str, true_class: str) -> bool:
        """The true class for an earlier request; False when that request id is not pending."""
        with self._lock:
            got = self._pending.pop(str(request_id), None)
            if got is None:
                self._unmatched += 1
                return False
            predicted, p = got
            self._labelled.append((p, predicted == str(true_class)))
            return True

    def report(self) -> AccuracyReport:
        with self._lock:
            recent = np.fromiter(self._recent, dtype=np.float64, count=len(self._recent))
            labelled = list(self._labelled)
            pending, unmatched, evicted = len(self._pending), self._unmatched, self._evicted
        method = "cbpe" if self.calibration is not None else "mean_confidence"
        est = _from_probabilities(recent, method) if recent.size else None
        real = est_l = None
        if labelled:
            ps = np.array([p for p, _ in labelled])
            real = _wilson(sum(1 for _, ok in labelled if ok), len(labelled))
            est_l = _from_probabilities(ps, method)
        return AccuracyReport(est, real, est_l, pending, unmatched, evicted)
