"""The digits example model: a small MLP trained in PyTorch on scikit-learn's bundled digits.

The trained model ships inside the package as `digits.onnx` plus `digits.json` (version, held-out
accuracy, input/output names, split and training seeds), so serving it, benchmarking it with
ONNX Runtime and running the demo need no PyTorch and no training. PyTorch is needed only to
retrain (`python -m benchwatch.example.train --write-shipped`, seeded and deterministic for a
given PyTorch build) or to bench the torch backend, which loads the shipped ONNX file's weights
into the same architecture. Nothing is downloaded: the data ships inside scikit-learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from probes.errors import ConfigError, require

MODEL_NAME = "digits"
RECIPE = "mlp64-2x64-relu-adam-v2"
INPUT_DIM = 64
NUM_CLASSES = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 1234
TRAIN_SEED = 0
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
ONNX_FILE = f"{MODEL_NAME}.onnx"
META_FILE = f"{MODEL_NAME}.json"


@dataclass(frozen=True)
class ModelFiles:
    """The example model's ONNX file and what it is."""

    name: str
    version: str  # short SHA-256 of the ONNX file
    onnx_path: Path
    meta: dict[str, Any]


def shipped_dir() -> Path:
    """The package directory holding the shipped model (installed as plain files by pip)."""
    return Path(str(resources.files("benchwatch.example")))


def shipped_model() -> ModelFiles:
    """The model that ships with benchwatch: no training, no PyTorch."""
    return read_model(shipped_dir())


def read_model(directory: Path) -> ModelFiles:
    meta = json.loads((directory / META_FILE).read_text())
    return ModelFiles(meta["name"], meta["version"], directory / ONNX_FILE, meta)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 inputs scaled to [0, 1] and int64 labels."""
    datasets = require("sklearn.datasets", "bench", "the digits data (scikit-learn's bundled copy)")
    data = datasets.load_digits()
    x = (np.asarray(data.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(data.target, dtype=np.int64)
    return x, y


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split shared by the model (train) and the `digits` suite (test)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(round(n * TEST_FRACTION))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def import_torch(what: str) -> Any:
    return require("torch", "torch", what)


def build_module() -> Any:
    torch = import_torch("the example model in PyTorch")
    nn = torch.nn
    torch.manual_seed(TRAIN_SEED)
    return nn.Sequential(
        nn.Linear(INPUT_DIM, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES)
    )


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """The initializers (weights) of an ONNX file, by name."""
    onnx = require("onnx", "torch", "loading ONNX weights into PyTorch")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def load_torch_module(files: ModelFiles | None = None) -> Any:
    """The example model in PyTorch (eval mode), with the weights of its shipped ONNX file."""
    return torch_module_from_path((files or shipped_model()).onnx_path)


def torch_module_from_path(path: str | Path) -> Any:
    """The example architecture with weights from a `.pt` state_dict (loaded with
    `weights_only=True`: no pickled objects) or from an ONNX file exported from it."""
    torch = import_torch("the torch backend")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file {p} does not exist")
    module = build_module()
    if p.suffix == ".onnx":
        weights = onnx_weights(p)
        wanted = module.state_dict()
        if set(weights) != set(wanted) or any(
                weights[k].shape != tuple(v.shape) for k, v in wanted.items()):
            raise ConfigError(f"{p} does not hold the example architecture's weights "
                             f"({sorted(wanted)}); for your own model pass a .pt state_dict")
        state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    else:
        state = torch.load(p, weights_only=True)
    module.load_state_dict(state)
    module.eval()
    return module
