"""The digits example model: a small MLP trained in PyTorch on scikit-learn's bundled digits.

Nothing is downloaded: the data ships inside scikit-learn. The first call trains (seeded, a few
seconds on a CPU), exports to ONNX and caches both files under `$BENCHWATCH_CACHE` or
`~/.cache/benchwatch/models/`; later calls load the cache. The cache key includes the training
recipe version, so a changed recipe never reuses stale files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "digits"
RECIPE = "mlp64-2x64-relu-adam-v2"
INPUT_DIM = 64
NUM_CLASSES = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 1234
TRAIN_SEED = 0
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelFiles:
    """Where the cached example model lives, and what it is."""

    name: str
    version: str  # short content hash of the ONNX file
    torch_path: Path  # state_dict saved with torch.save (loaded with weights_only=True)
    onnx_path: Path
    meta: dict[str, Any]


def cache_dir() -> Path:
    root = os.environ.get("BENCHWATCH_CACHE") or str(Path.home() / ".cache" / "benchwatch")
    return Path(root) / "models" / f"{MODEL_NAME}-{RECIPE}"


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 inputs scaled to [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (np.asarray(data.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(data.target, dtype=np.int64)
    return x, y


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split shared by the model (train) and the `digits` suite (test)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(round(n * TEST_FRACTION))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def build_module() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(TRAIN_SEED)
    return nn.Sequential(
        nn.Linear(INPUT_DIM, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES)
    )


def _train(module: Any, x: np.ndarray, y: np.ndarray, epochs: int = 60) -> None:
    import torch

    gen = torch.Generator().manual_seed(TRAIN_SEED)
    # one thread: tiny batches gain nothing from more, and spinning threads starve a shared CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _epochs(torch, module, x, y, epochs, gen)
    finally:
        torch.set_num_threads(threads)
    module.eval()


def _epochs(torch: Any, module: Any, x: np.ndarray, y: np.ndarray, epochs: int, gen: Any) -> None:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = perm[start : start + 64]
            opt.zero_grad()
            loss_fn(module(xt[idx]), yt[idx]).backward()
            opt.step()


def _export_onnx(module: Any, path: Path) -> None:
    import torch

    # dynamo=False: the TorchScript exporter needs no `onnxscript` and is reliable for an MLP
    # (torch 2.15's default dynamo exporter requires onnxscript, which is not a dependency).
    with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(torch, module, path)


def _export(torch: Any, module: Any, path: Path) -> None:
    torch.onnx.export(
        module,
        (torch.zeros(1, INPUT_DIM),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def ensure_model(directory: Path | None = None) -> ModelFiles:
    """Train and export the model unless cached; return its files. Safe against concurrent
    first use: files are written to a temporary name and renamed into place."""
    directory = directory or cache_dir()
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        files = ModelFiles(MODEL_NAME, meta["version"], directory / "model.pt",
                           directory / "model.onnx", meta)
        if files.torch_path.exists() and files.onnx_path.exists():
            return files
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    log.info("training the digits example model (first use) into %s", directory)
    x, y = load_digits_arrays()
    train_idx, test_idx = split_indices(len(x))
    module = build_module()
    _train(module, x[train_idx], y[train_idx])
    with torch.no_grad():
        pred = module(torch.from_numpy(x[test_idx])).argmax(1).numpy()
    accuracy = float((pred == y[test_idx]).mean())
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        tmp_pt, tmp_onnx = Path(tmp) / "model.pt", Path(tmp) / "model.onnx"
        torch.save(module.state_dict(), tmp_pt)
        _export_onnx(module, tmp_onnx)
        version = hashlib.sha256(tmp_onnx.read_bytes()).hexdigest()[:12]
        meta = {"name": MODEL_NAME, "version": version, "recipe": RECIPE,
                "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
                "input_dim": INPUT_DIM, "num_classes": NUM_CLASSES,
                "test_accuracy": accuracy, "torch_version": torch.__version__}
        os.replace(tmp_pt, directory / "model.pt")
        os.replace(tmp_onnx, directory / "model.onnx")
        tmp_meta = Path(tmp) / "meta.json"
        tmp_meta.write_text(json.dumps(meta, indent=2))
        os.replace(tmp_meta, meta_path)
    log.info("digits model %s: held-out accuracy %.4f", version, accuracy)
    return ModelFiles(MODEL_NAME, version, directory / "model.pt", directory / "model.onnx", meta)


def load_torch_module(files: ModelFiles | None = None) -> Any:
    """The trained module in eval mode (weights only: no pickle of arbitrary objects)."""
    import torch

    files = files or ensure_model()
    module = build_module()
    module.load_state_dict(torch.load(files.torch_path, weights_only=True))
    module.eval()
    return module


def torch_module_from_path(path: str | Path) -> Any:
    """Load a torch model given a path: a state_dict of this architecture (`.pt`), or the
    cached example when the path is an ONNX file whose sibling `model.pt` exists."""
    import torch

    p = Path(path)
    if p.suffix == ".onnx":
        p = p.with_suffix(".pt")
    if not p.exists():
        raise FileNotFoundError(
            f"no PyTorch weights at {p}: pass a state_dict saved with torch.save "
            "(the example model writes model.pt beside model.onnx)")
    module = build_module()
    module.load_state_dict(torch.load(p, weights_only=True))
    module.eval()
    return module
