"""Benchmark suites: inputs, expected outputs and metadata in a safe format with a content hash.

On disk a suite is two files side by side: `NAME.json` (format, name, metadata, content hash)
and `NAME.npz` (numeric arrays `inputs` and `expected`, read with `allow_pickle=False`). The
hash covers both arrays (dtype, shape, bytes) and the canonical metadata JSON, so a changed
byte anywhere is caught at load time. The `digits` suite ships inside this package; it is the
held-out split of scikit-learn's digits that the example model never saw in training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.errors import UsageError

FORMAT = "benchwatch-suite/1"
BUILTIN_DIR = Path(__file__).with_name("suite_data")
BUILTIN = ("digits",)


class SuiteError(UsageError):
    """A suite could not be loaded or does not fit the model; the message says what to do."""


@dataclass(frozen=True)
class Suite:
    name: str
    inputs: np.ndarray  # (n, *input_shape), float32
    expected: np.ndarray  # (n,) class labels for classification
    metadata: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.inputs.shape[1:])

    @property
    def task(self) -> str:
        return str(self.metadata.get("task", "classification"))


def content_hash(inputs: np.ndarray, expected: np.ndarray, metadata: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for arr in (inputs, expected):
        c = np.ascontiguousarray(arr)
        h.update(f"{c.dtype.str}{c.shape}".encode())
        h.update(c.tobytes())
    h.update(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode())
    return "sha256:" + h.hexdigest()


def make_suite(name: str, inputs: np.ndarray, expected: np.ndarray,
               metadata: Mapping[str, Any]) -> Suite:
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    expected = np.ascontiguousarray(expected)
    if inputs.ndim < 2 or len(inputs) != len(expected) or len(inputs) == 0:
        raise SuiteError(f"suite {name!r}: inputs {inputs.shape} and expected {expected.shape} "
                         "must be non-empty and have the same number of rows")
    meta = dict(metadata)
    return Suite(name, inputs, expected, meta, content_hash(inputs, expected, meta))


def save_suite(suite: Suite, directory: str | Path) -> Path:
    """Write `NAME.json` and `NAME.npz` into `directory`; return the JSON path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(d / f"{suite.name}.npz", inputs=suite.inputs, expected=suite.expected)
    doc = {"format": FORMAT, "name": suite.name, "content_hash": suite.content_hash,
           "n": len(suite), "input_shape": list(suite.input_shape),
           "metadata": dict(suite.metadata)}
    path = d / f"{suite.name}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (`digits`) or a suite from `PATH.json` / `PATH.npz` / `PATH`."""
    raw = str(name_or_path)
    if raw in BUILTIN and not Path(raw).exists():
        base = BUILTIN_DIR / raw
    else:
        base = Path(raw)
        if base.suffix in (".json", ".npz"):
            base = base.with_suffix("")
    json_path, npz_path = base.with_suffix(".json"), base.with_suffix(".npz")
    if not json_path.exists() or not npz_path.exists():
        raise SuiteError(f"no suite at {raw!r}: expected {json_path} and {npz_path}, or a "
                         f"built-in name ({', '.join(BUILTIN)})")
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SuiteError(f"{json_path}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SuiteError(f"{json_path}: not a {FORMAT} file (format={doc.get('format')!r})"
                         if isinstance(doc, dict) else f"{json_path}: not a JSON object")
    try:
        with np.load(npz_path, allow_pickle=False) as z:  # never unpickle received data
            inputs, expected = z["inputs"], z["expected"]
    except (OSError, KeyError, ValueError) as e:
        raise SuiteError(f"{npz_path}: unreadable or missing arrays inputs/expected ({e})") from e
    for label, arr in (("inputs", inputs), ("expected", expected)):
        if arr.dtype.kind not in "biuf":
            raise SuiteError(f"{npz_path}: {label} has dtype {arr.dtype}; only numbers allowed")
    meta = doc.get("metadata") or {}
    got = content_hash(inputs, expected, meta)
    if got != doc.get("content_hash"):
        raise SuiteError(f"{json_path}: content hash mismatch (file says "
                         f"{doc.get('content_hash')}, data hashes to {got}); the suite was "
                         "modified or corrupted: rebuild it")
    return Suite(str(doc.get("name", base.name)), inputs, expected, meta, got)


def build_digits_suite() -> Suite:
    """The held-out 25% of scikit-learn's digits (seeded split shared with the example model)."""
    from benchwatch.example.model import (
        INPUT_DIM,
        INPUT_NAME,
        MODEL_NAME,
        NUM_CLASSES,
        SPLIT_SEED,
        load_digits_arrays,
        split_indices,
    )

    x, y = load_digits_arrays()
    _, test_idx = split_indices(len(x))
    meta = {"model": MODEL_NAME, "task": "classification", "num_classes": NUM_CLASSES,
            "input_name": INPUT_NAME, "input_dim": INPUT_DIM, "split_seed": SPLIT_SEED,
            "source": "sklearn.datasets.load_digits (held-out 25%), pixels scaled to [0, 1]",
            # the robustness corruptions treat rows as 8x8 images in [0, 1]; the accuracy the
            # scorecard's cost-to-target needs (DAWNBench-style)
            "image_shape": [8, 8], "value_range": [0.0, 1.0], "accuracy_target": 0.95}
    return make_suite("digits", x[test_idx], y[test_idx], meta)


def check_fits(suite: Suite, input_shape: tuple[int, ...] | None, num_outputs: int | None,
               output_shape: tuple[int, ...] | None = None) -> None:
    """Raise SuiteError when the suite cannot be fed to a model with this signature."""
    if input_shape is not None and tuple(input_shape) != suite.input_shape:
        raise SuiteError(f"suite {suite.name!r} has inputs of shape {suite.input_shape} but the "
                         f"model expects {tuple(input_shape)}: pick the suite built for this model")
    classes = suite.metadata.get("num_classes")
    if num_outputs is not None and classes is not None and int(classes) != int(num_outputs):
        raise SuiteError(f"suite {suite.name!r} has {classes} classes but the model outputs "
                         f"{num_outputs} scores per row: pick the suite built for this model")
