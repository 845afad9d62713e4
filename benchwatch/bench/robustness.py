"""Robustness on a suite: seeded corruptions at graded severities, accuracy under each, the
mean corruption error normalised to the suite's reference model, and the prediction flip rate
under tiny noise.

Corruptions (five severities each, as in ImageNet-C):
- image suites (metadata `image_shape`, e.g. [8, 8], and `value_range`, default [0, 1]):
  `gaussian_noise` (sigma a fraction of the value range), `blur` (Gaussian, sigma in pixels),
  `occlusion` (a square patch at a random place set to the range's low end), and
  `feature_dropout` (a fraction of the pixels set to the low end);
- tabular suites (everything else): `scaled_noise` (Gaussian noise scaled to each feature's
  standard deviation in the suite) and `missing_values` (a fraction of the cells replaced by
  the feature's median, the imputation a serving pipeline applies to a missing value).

Corruption error (ImageNet-C): CE_c = sum over severities of the model's error under c divided
by the same sum for the reference model; mCE = the mean of CE_c over the corruptions (1.0 = as
robust as the reference, below 1 = more robust). The digits suite's reference is the example
model that ships with benchwatch; another suite names one with `robustness_reference` (an
.onnx path) or gets no mCE (its mean error under corruption is reported instead).

Flip rate: how often the predicted class changes when a row gets tiny Gaussian noise (2% of the
value range, or of each feature's standard deviation), over `FLIP_DRAWS` draws per row. It needs
no labels, so `benchwatch replay` measures it on a canary and its primary with the same
perturbed queries (`flip_pass`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchwatch.bench.runner import Progress
from benchwatch.bench.suites import Suite
from drift.figures import Figure

SEVERITIES = (1, 2, 3, 4, 5)
IMAGE_CORRUPTIONS = ("gaussian_noise", "blur", "occlusion", "feature_dropout")
TABULAR_CORRUPTIONS = ("scaled_noise", "missing_values")
# per severity 1..5
_NOISE_OF_RANGE = (0.04, 0.08, 0.12, 0.18, 0.26)
_BLUR_SIGMA_PX = (0.4, 0.6, 0.8, 1.0, 1.3)
_OCCLUDED_SIDE = (0.2, 0.3, 0.4, 0.5, 0.6)  # of the image's shorter side
_DROPPED = (0.05, 0.1, 0.2, 0.3, 0.45)
_NOISE_OF_STD = (0.1, 0.2, 0.35, 0.5, 0.75)
_MISSING = (0.05, 0.1, 0.2, 0.3, 0.45)
FLIP_NOISE = 0.02  # tiny: of the value range (images) or of each feature's std (tabular)
FLIP_DRAWS = 5
BATCH = 64

Predict = Callable[[np.ndarray], Any]


def image_shape(suite: Suite) -> tuple[int, int] | None:
    """The suite's (height, width) when it declares itself an image suite, else None."""
    shape = suite.metadata.get("image_shape")
    if not shape:
        return None
    h, w = (int(d) for d in shape)
    if h * w != int(np.prod(suite.input_shape)):
        raise ValueError(f"suite {suite.name!r}: image_shape {shape} does not hold the "
                         f"{suite.input_shape} inputs")
    return h, w


def corruptions(suite: Suite) -> tuple[str, ...]:
    return IMAGE_CORRUPTIONS if image_shape(suite) else TABULAR_CORRUPTIONS


def _value_range(suite: Suite) -> tuple[float, float]:
    lo, hi = suite.metadata.get("value_range") or (0.0, 1.0)
    return float(lo), float(hi)


def _blur(x: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Separable Gaussian blur of flattened images (edges reflected)."""
    r = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    img = x.reshape(len(x), *shape)
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = np.pad(img, pad, mode="reflect")
        img = sum(k[i] * np.take(p, range(i, i + shape[axis - 1]), axis=axis)
                  for i in range(len(k)))
    return np.asarray(img).reshape(x.shape)


def corrupt(suite: Suite, name: str, severity: int, seed: int) -> np.ndarray:
    """The suite's inputs under corruption `name` at `severity` (1..5); seeded, so every
    backend and every run sees the same corrupted rows."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    s = severity - 1
    rng = np.random.default_rng([seed, (IMAGE_CORRUPTIONS + TABULAR_CORRUPTIONS).index(name),
                                 severity])
    x = suite.inputs.reshape(len(suite), -1).astype(np.float32)
    lo, hi = _value_range(suite)
    out: np.ndarray
    if name == "gaussian_noise":
        out = np.clip(x + rng.normal(0, _NOISE_OF_RANGE[s] * (hi - lo), x.shape), lo, hi)
    elif name == "blur":
        out = _blur(x, image_shape(suite) or (1, x.shape[1]), _BLUR_SIGMA_PX[s])
    elif name == "occlusion":
        h, w = image_shape(suite) or (1, x.shape[1])
        side = max(1, round(_OCCLUDED_SIDE[s] * min(h, w)))
        img = x.reshape(len(x), h, w).copy()
        tops = rng.integers(0, h - side + 1, len(x))
        lefts = rng.integers(0, w - side + 1, len(x))
        for i, (t, left) in enumerate(zip(tops, lefts, strict=True)):
            img[i, t : t + side, left : left + side] = lo
        out = img.reshape(x.shape)
    elif name == "feature_dropout":
        out = np.where(rng.random(x.shape) < _DROPPED[s], lo, x)
    elif name == "scaled_noise":
        out = x + rng.normal(0, 1, x.shape) * (_NOISE_OF_STD[s] * x.std(axis=0))
    elif name == "missing_values":
        out = np.where(rng.random(x.shape) < _MISSING[s], np.median(x, axis=0), x)
    else:
        raise ValueError(f"unknown corruption {name!r}")
    return np.ascontiguousarray(out, dtype=np.float32).reshape(suite.inputs.shape)


def tiny_noise(suite: Suite, seed: int, draws: int = FLIP_DRAWS) -> np.ndarray:
    """`draws` perturbed copies of the suite's rows, (draws * n, ...): row i of draw d at
    d * n + i. The same seed gives the same queries to every arm of a replay."""
    x = suite.inputs.reshape(len(suite), -1).astype(np.float32)
    if image_shape(suite):
        lo, hi = _value_range(suite)
        scale: Any = FLIP_NOISE * (hi - lo)
    else:
        scale = FLIP_NOISE * x.std(axis=0)
    rng = np.random.default_rng([seed, 99])
    noisy = np.concatenate([x + rng.normal(0, 1, x.shape) * scale for _ in range(draws)])
    return np.ascontiguousarray(noisy, dtype=np.float32).reshape(draws * len(suite),
                                                                 *suite.input_shape)


def predicted(predict: Predict, inputs: np.ndarray) -> np.ndarray:
    """Predicted class per row, in batches."""
    out = [np.asarray(predict(inputs[i : i + BATCH])).argmax(1)
           for i in range(0, len(inputs), BATCH)]
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def flip_pass(predict: Predict, suite: Suite, seed: int, draws: int = FLIP_DRAWS) -> np.ndarray:
    """Per perturbed query (draws * rows), whether the predicted class differs from the clean
    row's: the label-free robustness sample (`benchwatch replay` sends the same to both arms)."""
    clean = predicted(predict, suite.inputs)
    flipped: np.ndarray = predicted(predict, tiny_noise(suite, seed, draws)) != np.tile(clean, draws)
    return flipped


@dataclass(frozen=True)
class Robustness:
    """One model's robustness on one suite."""

    clean_accuracy: float
    accuracy: Mapping[str, tuple[float, ...]]  # corruption -> accuracy per severity 1..5
    flip_rate: float
    flip_queries: int
    reference: str | None = None  # what the corruption errors are normalised to
    reference_errors: Mapping[str, tuple[float, ...]] | None = field(default=None, repr=False)

    def corruption_errors(self) -> dict[str, float] | None:
        """CE per corruption: the model's summed error over severities / the reference's."""
        if self.reference_errors is None:
            return None
        out = {}
        for c, accs in self.accuracy.items():
            ref = sum(self.reference_errors[c])
            if ref > 0:
                out[c] = sum(1 - a for a in accs) / ref
        return out

    @property
    def mce(self) -> float | None:
        ce = self.corruption_errors()
        return float(np.mean(list(ce.values()))) if ce else None

    @property
    def mean_error(self) -> float:
        """The plain mean error over every corruption and severity (no reference needed)."""
        return float(np.mean([1 - a for accs in self.accuracy.values() for a in accs]))

    def figures(self) -> list[Figure]:
        """Baseline figures at the `outputs` point: `corruption_accuracy` per
        `<corruption>_<severity>` scenario, `corruption_error` per corruption (normalised),
        `mce` and `mean_corruption_error` (scenario `corruptions`), `flip_rate` (`tiny_noise`)."""
        out = [Figure("corruption_accuracy", a, "outputs", f"{c}_{s}")
               for c, accs in self.accuracy.items() for s, a in zip(SEVERITIES, accs, strict=True)]
        out += [Figure("corruption_error", v, "outputs", c)
                for c, v in (self.corruption_errors() or {}).items()]
        if self.mce is not None:
            out.append(Figure("mce", self.mce, "outputs", "corruptions"))
        out.append(Figure("mean_corruption_error", self.mean_error, "outputs", "corruptions"))
        out.append(Figure("flip_rate", self.flip_rate, "outputs", "tiny_noise"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"clean_accuracy": self.clean_accuracy,
                "accuracy": {c: list(a) for c, a in self.accuracy.items()},
                "corruption_errors": self.corruption_errors(), "mce": self.mce,
                "mean_corruption_error": self.mean_error, "reference": self.reference,
                "flip_rate": self.flip_rate, "flip_queries": self.flip_queries,
                "severities": list(SEVERITIES), "flip_noise": FLIP_NOISE}


def corruption_accuracy(predict: Predict, suite: Suite, seed: int) -> dict[str, tuple[float, ...]]:
    return {c: tuple(float(np.mean(predicted(predict, corrupt(suite, c, s, seed))
                                   == suite.expected)) for s in SEVERITIES)
            for c in corruptions(suite)}


def errors_of(accuracy: Mapping[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    return {c: tuple(1 - a for a in accs) for c, accs in accuracy.items()}


def rows_sent(suite: Suite) -> int:
    """How many rows `measure` sends to the model: the clean rows twice (accuracy, and the
    flip pass's reference), `FLIP_DRAWS` noisy copies, every corruption at every severity."""
    return len(suite) * (2 + FLIP_DRAWS + len(corruptions(suite)) * len(SEVERITIES))


def measure(predict: Predict, suite: Suite, seed: int = 0,
            reference: tuple[str, Mapping[str, tuple[float, ...]]] | None = None,
            progress: Progress | None = None) -> Robustness:
    """Accuracy under every corruption and severity, flip rate under tiny noise; with
    `reference` = (description, its errors per corruption and severity), the corruption errors
    normalised to it. `progress("robustness", rows done, rows_sent(suite))` after each batch
    (the CLI's progress and --max-duration-s: it may raise to stop the pass)."""
    if suite.task != "classification":
        raise ValueError(f"suite {suite.name!r} is a {suite.task} suite: robustness needs "
                         "class labels")
    if progress is not None:
        predict = _reporting(predict, progress, rows_sent(suite))
    clean = float(np.mean(predicted(predict, suite.inputs) == suite.expected))
    flips = flip_pass(predict, suite, seed)
    return Robustness(clean, corruption_accuracy(predict, suite, seed), float(flips.mean()),
                      int(flips.size), reference[0] if reference else None,
                      reference[1] if reference else None)


def _reporting(predict: Predict, progress: Progress, total: int) -> Predict:
    done = 0

    def call(batch: np.ndarray) -> Any:
        nonlocal done
        out = predict(batch)
        done += len(batch)
        progress("robustness", done, total)
        return out

    return call


def reference_errors(suite: Suite, seed: int = 0, model: str | None = None,
                     ) -> tuple[str, dict[str, tuple[float, ...]]] | None:
    """The suite's reference model's errors under the corruptions, or None when the suite has
    no reference model. `model` (an .onnx path) overrides the suite's; the digits suite's is
    the example model that ships with benchwatch (ONNX Runtime, one thread)."""
    from benchwatch.bench.backends import make_backend

    path = model or suite.metadata.get("robustness_reference")
    if path is None and suite.metadata.get("model") == "digits":
        path = "digits"
    if path is None:
        return None
    backend = make_backend("onnxruntime", str(path), threads=1)
    try:
        name = f"{backend.info.model} {backend.info.version}".strip()
        return name, errors_of(corruption_accuracy(backend.predict, suite, seed))
    finally:
        backend.close()
