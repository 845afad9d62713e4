"""summarize_output: classifier (logits and probabilities), regression, torch, NaN, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from probes.summarize import SummarizeError, summarize_output


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("rows", [3, 500])  # the plain-Python and the numpy path
def test_logits_and_probabilities_agree(rows: int) -> None:
    logits = np.random.default_rng(0).normal(size=(rows, 10)) * 3
    probs = _softmax(logits)
    a, b = summarize_output(logits), summarize_output(probs)
    assert len(a) == rows
    for ra, rb, p in zip(a, b, probs, strict=True):
        assert ra["predicted_class"] == rb["predicted_class"] == str(int(p.argmax()))
        assert ra["confidence"] == pytest.approx(p.max(), rel=1e-9)
        assert rb["confidence"] == pytest.approx(p.max(), rel=1e-9)
        h = float(-(p * np.log(p)).sum())
        assert ra["entropy"] == pytest.approx(h, rel=1e-7) and rb["entropy"] == pytest.approx(h, rel=1e-7)


def test_regression_and_labels() -> None:
    assert summarize_output(np.array([1.5, 2.0])) == [{"value": 1.5}, {"value": 2.0}]
    assert summarize_output(np.array([[1.0], [2.0]])) == [{"value": 1.0}, {"value": 2.0}]
    assert summarize_output(np.array([[1.0, 2.0]]), kind="regression") == [{"value_0": 1.0, "value_1": 2.0}]
    assert summarize_output(np.array([3, 1])) == [{"predicted_class": "3"}, {"predicted_class": "1"}]
    assert summarize_output(2.5) == [{"value": 2.5}]


def test_single_row_classifier_from_1d() -> None:
    [row] = summarize_output(np.array([0.1, 0.7, 0.2]), kind="classifier")
    assert row["predicted_class"] == "1" and row["confidence"] == pytest.approx(0.7)


def test_torch_tensor() -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor([[0.0, 5.0, 1.0]], requires_grad=True) * 1.0
    [row] = summarize_output(t)
    assert row["predicted_class"] == "1"


def test_non_finite_rows_give_none() -> None:
    out = summarize_output(np.array([[np.nan, 1.0], [0.2, 0.8]]))
    assert out[0] == {"predicted_class": None, "confidence": None, "entropy": None}
    assert out[1]["predicted_class"] == "1"
    assert summarize_output(np.array([math.inf])) == [{"value": None}]


def test_unreadable_outputs_raise_clearly() -> None:
    with pytest.raises(SummarizeError, match="outputs=callable"):
        summarize_output({"label": "cat"})
    with pytest.raises(SummarizeError, match="shape"):
        summarize_output(np.zeros((2, 2, 2)))
    with pytest.raises(SummarizeError, match="kind"):
        summarize_output(np.zeros(2), kind="ranking")  # type: ignore[arg-type]
