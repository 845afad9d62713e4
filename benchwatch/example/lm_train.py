"""Train the character-level language model and export it to ONNX (needs PyTorch).

    python -m benchwatch.example.lm_train                  # into the user's cache (~/.cache/benchwatch/charlm)
    python -m benchwatch.example.lm_train --out DIR        # elsewhere
    python -m benchwatch.example.lm_train --write-shipped  # overwrite benchwatch/example/charlm.* (development)

Seeded and single-threaded: the same PyTorch build on the same scikit-learn text writes the
same bytes (`charlm.json` records both and a hash of the text). Trained with torch.nn.GRU (its
fused kernel), then copied into the one-step module that is exported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.example.lm import (
    EMBED_DIM,
    HIDDEN_DIM,
    HOLDOUT_FRACTION,
    HOLDOUT_SEED,
    INPUT_NAMES,
    META_FILE,
    MODEL_NAME,
    ONNX_FILE,
    OUTPUT_NAMES,
    RECIPE,
    TRAIN_SEED,
    LmFiles,
    build_step_module,
    cache_dir,
    corpus_lines,
    encode,
    holdout,
    read_lm,
    shipped_dir,
    text_hash,
)
from probes.errors import require

log = logging.getLogger(__name__)

SEQ_LEN = 64
BATCH = 32
STEPS = 600
LR = 1e-2


def _train(torch: Any, ids: np.ndarray, vocab_size: int, steps: int) -> tuple[Any, float]:
    nn = torch.nn
    torch.manual_seed(TRAIN_SEED)
    embed = nn.Embedding(vocab_size, EMBED_DIM)
    gru = nn.GRU(EMBED_DIM, HIDDEN_DIM, batch_first=True)
    head = nn.Linear(HIDDEN_DIM, vocab_size)
    params = [*embed.parameters(), *gru.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    data = torch.from_numpy(ids)
    loss = torch.tensor(0.0)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - SEQ_LEN - 1, (BATCH,), generator=gen)
        x = torch.stack([data[s : s + SEQ_LEN] for s in starts.tolist()])
        y = torch.stack([data[s + 1 : s + SEQ_LEN + 1] for s in starts.tolist()])
        opt.zero_grad()
        out, _ = gru(embed(x))
        loss = loss_fn(head(out).reshape(-1, vocab_size), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
    step = build_step_module(vocab_size)
    with torch.no_grad():
        step.embed.weight.copy_(embed.weight)
        step.ih.weight.copy_(gru.weight_ih_l0)
        step.ih.bias.copy_(gru.bias_ih_l0)
        step.hh.weight.copy_(gru.weight_hh_l0)
        step.hh.bias.copy_(gru.bias_hh_l0)
        step.head.weight.copy_(head.weight)
        step.head.bias.copy_(head.bias)
    step.eval()
    return step, float(loss.detach())


def _export(torch: Any, module: Any, path: Path) -> None:
    # dynamo=False: the TorchScript exporter needs no onnxscript (see example/train.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, (torch.zeros(1, dtype=torch.int64), torch.zeros(1, HIDDEN_DIM)), str(path),
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes={n: {0: "batch"} for n in (*INPUT_NAMES, *OUTPUT_NAMES)},
            opset_version=17, dynamo=False)


def _heldout_loss(torch: Any, module: Any, ids: np.ndarray) -> float:
    """Mean cross-entropy (nats per character) of the one-step module on held-out text."""
    with torch.no_grad():
        h = torch.zeros(1, HIDDEN_DIM)
        total = 0.0
        for a, b in zip(ids[:-1].tolist(), ids[1:].tolist(), strict=True):
            logits, h = module(torch.tensor([a]), h)
            total += float(torch.nn.functional.cross_entropy(logits, torch.tensor([b])))
    return total / max(1, len(ids) - 1)


def write_lm(directory: Path, steps: int = STEPS) -> LmFiles:
    """Train (seeded), export to ONNX and write `charlm.onnx` + `charlm.json` into `directory`."""
    torch = require("torch", "torch", "training the language model")
    lines = corpus_lines()
    train_lines, held = holdout(lines)
    text = "\n".join(train_lines) + "\n"
    vocab = "".join(sorted(set("\n".join(lines))))
    ids = encode(text, vocab)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic, and tiny batches gain nothing from more
    t0 = time.perf_counter()
    try:
        module, loss = _train(torch, ids, len(vocab) + 1, steps)
        held_text = "\n".join(lines[i] for i in held) + "\n"
        held_loss = _heldout_loss(torch, module, encode(held_text, vocab))
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_tmp = Path(tmp) / ONNX_FILE
        _export(torch, module, onnx_tmp)
        data = onnx_tmp.read_bytes()
    sklearn = require("sklearn", "bench", "recording scikit-learn's version")
    meta = {"name": MODEL_NAME, "version": hashlib.sha256(data).hexdigest()[:12],
            "recipe": RECIPE, "task": "generation", "vocab": vocab,
            "input_names": list(INPUT_NAMES), "output_names": list(OUTPUT_NAMES),
            "embed_dim": EMBED_DIM, "hidden_dim": HIDDEN_DIM, "train_steps": steps,
            "train_loss": round(loss, 4), "heldout_nats_per_char": round(held_loss, 4),
            "heldout_lines": held, "holdout_seed": HOLDOUT_SEED,
            "holdout_fraction": HOLDOUT_FRACTION, "train_seed": TRAIN_SEED,
            "text_sha256": text_hash(lines), "train_chars": len(text),
            "torch_version": torch.__version__, "sklearn_version": sklearn.__version__,
            "data": "sklearn/datasets/descr/*.rst (scikit-learn's bundled dataset descriptions)"}
    (directory / ONNX_FILE).write_bytes(data)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("%s %s: %d steps in %.1f s, held-out %.3f nats/char → %s", MODEL_NAME,
             meta["version"], steps, seconds, held_loss, directory)
    return read_lm(directory)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchwatch.example.lm_train",
                                description="train the character-level language model (needs PyTorch)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"write {ONNX_FILE} and {META_FILE} here (default {cache_dir()})")
    p.add_argument("--write-shipped", action="store_true",
                   help=f"overwrite the shipped files in {shipped_dir()} (development)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"training steps (default {STEPS})")
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error("--steps must be >= 1")
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    out = shipped_dir() if a.write_shipped else (a.out or cache_dir())
    t0 = time.perf_counter()
    files = write_lm(out, a.steps)
    print(f"{files.onnx_path} {files.version} held-out {files.meta['heldout_nats_per_char']:.3f} "
          f"nats/char ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
