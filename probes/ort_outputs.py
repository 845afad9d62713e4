"""Which of an ONNX Runtime session's outputs holds the per-class scores.

A PyTorch export has one output, the scores. scikit-learn classifiers exported with skl2onnx
have two: output 0 the predicted labels (int64, one per row), output 1 the probabilities,
either a float tensor (rows, classes) (`options={"zipmap": False}`) or, by default, a ZipMap:
a list with one `{label: probability}` dict per row. The probe's output statistics and the
bench's `onnxruntime` backend both read the scores through `classifier_scores`, so a
predicted class, confidence and entropy mean the same in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classifier_scores"]


def classifier_scores(outputs: Any) -> Any:
    """From a `session.run()` result (one entry per output): the first 2-D numeric array
    (probabilities or logits, rows x classes); else the first ZipMap output as a float32
    array, its columns in sorted label order (scikit-learn's `classes_` order); else the first
    output (labels only: the statistics then count predicted classes)."""
    if not isinstance(outputs, list | tuple) or not outputs:
        return outputs
    for out in outputs:
        if isinstance(out, np.ndarray) and out.ndim == 2 and out.dtype.kind == "f":
            return out
    for out in outputs:
        if isinstance(out, list) and out and isinstance(out[0], dict):
            labels = sorted(out[0])
            return np.array([[row[k] for k in labels] for row in out], dtype=np.float32)
    return outputs[0]
