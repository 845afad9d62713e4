"""The digits example model (PyTorch → ONNX, trained at first use) and its probed HTTP server."""

from benchwatch.example.model import (
    INPUT_DIM,
    MODEL_NAME,
    NUM_CLASSES,
    ModelFiles,
    cache_dir,
    ensure_model,
    load_digits_arrays,
    load_torch_module,
    split_indices,
)

__all__ = [
    "INPUT_DIM",
    "MODEL_NAME",
    "NUM_CLASSES",
    "ModelFiles",
    "cache_dir",
    "ensure_model",
    "load_digits_arrays",
    "load_torch_module",
    "split_indices",
]
