"""Retrain the digits example model and write the files that ship with benchwatch (needs PyTorch).

    python -m benchwatch.example.train --write-shipped    # overwrite benchwatch/example/digits.*
    python -m benchwatch.example.train --out DIR          # write them elsewhere (to compare)

Seeded and single-threaded: the same PyTorch build writes the same bytes (`digits.json` records
which build made them). The data is scikit-learn's bundled digits; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.example.model import (
    INPUT_DIM,
    INPUT_NAME,
    META_FILE,
    MODEL_NAME,
    NUM_CLASSES,
    ONNX_FILE,
    OUTPUT_NAME,
    RECIPE,
    SPLIT_SEED,
    TEST_FRACTION,
    TRAIN_SEED,
    ModelFiles,
    build_module,
    import_torch,
    load_digits_arrays,
    read_model,
    shipped_dir,
    split_indices,
)

log = logging.getLogger(__name__)


def _train(module: Any, x: np.ndarray, y: np.ndarray, epochs: int = 60) -> None:
    torch = import_torch("training the example model")
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    # one thread: tiny batches gain nothing from more, and one thread keeps the run deterministic
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
    torch = import_torch("exporting the example model to ONNX")
    # dynamo=False: the TorchScript exporter needs no `onnxscript` and is reliable for an MLP
    # (torch 2.15's default dynamo exporter requires onnxscript, which is not a dependency).
    with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
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


def write_model(directory: Path) -> ModelFiles:
    """Train (seeded), export to ONNX and write `digits.onnx` + `digits.json` into `directory`.

    The same PyTorch build gives the same bytes; the JSON records which build made them."""
    torch = import_torch("training the example model")
    x, y = load_digits_arrays()
    train_idx, test_idx = split_indices(len(x))
    module = build_module()
    _train(module, x[train_idx], y[train_idx])
    with torch.no_grad():
        pred = module(torch.from_numpy(x[test_idx])).argmax(1).numpy()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_tmp = Path(tmp) / ONNX_FILE
        _export_onnx(module, onnx_tmp)
        data = onnx_tmp.read_bytes()
    meta = {"name": MODEL_NAME, "version": hashlib.sha256(data).hexdigest()[:12],
            "recipe": RECIPE, "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
            "input_dim": INPUT_DIM, "num_classes": NUM_CLASSES,
            "test_accuracy": round(float((pred == y[test_idx]).mean()), 6),
            "test_rows": int(len(test_idx)), "test_fraction": TEST_FRACTION,
            "split_seed": SPLIT_SEED, "train_seed": TRAIN_SEED,
            "torch_version": torch.__version__,
            "data": "sklearn.datasets.load_digits, pixels / 16"}
    (directory / ONNX_FILE).write_bytes(data)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("digits model %s: held-out accuracy %.4f → %s", meta["version"],
             meta["test_accuracy"], directory)
    return read_model(directory)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchwatch.example.train",
                                description="retrain the digits example model (needs PyTorch)")
    p.add_argument("--write-shipped", action="store_true",
                   help=f"overwrite the shipped {ONNX_FILE} and {META_FILE} in {shipped_dir()}")
    p.add_argument("--out", type=Path, default=None, help="write the two files here instead")
    a = p.parse_args(argv)
    if not a.write_shipped and a.out is None:
        p.error("pass --write-shipped or --out DIR")
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    files = write_model(shipped_dir() if a.write_shipped else a.out)
    print(f"{files.onnx_path} {files.version} held-out accuracy {files.meta['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
