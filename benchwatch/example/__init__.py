"""The digits example model (shipped as ONNX; PyTorch only to retrain) and its probed HTTP server."""

from benchwatch.example.model import (
    INPUT_DIM,
    MODEL_NAME,
    NUM_CLASSES,
    ModelFiles,
    load_digits_arrays,
    load_torch_module,
    shipped_model,
    split_indices,
)

__all__ = [
    "INPUT_DIM",
    "MODEL_NAME",
    "NUM_CLASSES",
    "ModelFiles",
    "load_digits_arrays",
    "load_torch_module",
    "shipped_model",
    "split_indices",
]
