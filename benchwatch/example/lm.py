"""The generative example: a character-level GRU language model, trained in PyTorch on the dataset
descriptions that ship inside scikit-learn (`sklearn/datasets/descr/*.rst`, nothing downloaded).

The trained model ships inside the package as `charlm.onnx` plus `charlm.json` (version, vocabulary,
sizes, seeds, held-out lines), so serving it with ONNX Runtime, benchmarking it and `benchwatch
demo --model lm` need no PyTorch and no training. PyTorch is needed only to retrain
(`python -m benchwatch.example.lm_train`, seeded, into a cache directory outside the installation)
or for the torch backend, which loads the ONNX file's weights into the same architecture.

One decoding loop serves both frameworks: a backend's `step(token, hidden) -> (logits, hidden)`
is one GRU step exported as is, and `generate` feeds the prompt one character at a time, then
picks each next character from the logits with numpy (greedy at temperature 0, else seeded
sampling), so torch and ONNX Runtime generate the same text for the same seed. Generation stops
at a newline (`stop_reason="stop"`) or after `max_tokens` (`"length"`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from probes.errors import ConfigError, require

MODEL_NAME = "charlm"
RECIPE = "gru-e32-h128-adam-v1"
EMBED_DIM = 32
HIDDEN_DIM = 128
HOLDOUT_SEED = 1234  # which description lines are held out (the `text` suite's prompts)
HOLDOUT_FRACTION = 0.1
TRAIN_SEED = 0
ONNX_FILE = f"{MODEL_NAME}.onnx"
META_FILE = f"{MODEL_NAME}.json"
INPUT_NAMES = ("token", "hidden")
OUTPUT_NAMES = ("logits", "hidden_out")
STOP_CHAR = "\n"
UNKNOWN_ID = 0  # characters outside the vocabulary
MAX_TOKENS_LIMIT = 1024
STOP_REASONS = ("stop", "length")

Step = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class LmFiles:
    """The language model's ONNX file and what it is."""

    name: str
    version: str  # short SHA-256 of the ONNX file
    onnx_path: Path
    meta: dict[str, Any]

    @property
    def vocab(self) -> str:
        return str(self.meta["vocab"])


def shipped_dir() -> Path:
    return Path(str(resources.files("benchwatch.example")))


def cache_dir() -> Path:
    """Where a retrained model goes by default: the user's cache, never the installation."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "benchwatch" / MODEL_NAME


def read_lm(directory: str | Path) -> LmFiles:
    d = Path(directory)
    try:
        meta = json.loads((d / META_FILE).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"no readable {META_FILE} in {d} ({e}): retrain with "
                          f"`python -m benchwatch.example.lm_train --out {d}`") from e
    return LmFiles(meta["name"], meta["version"], d / ONNX_FILE, meta)


def shipped_lm() -> LmFiles:
    """The language model that ships with benchwatch: no training, no PyTorch."""
    return read_lm(shipped_dir())


# -- text ------------------------------------------------------------------------------------
def corpus_lines() -> list[str]:
    """Every line of scikit-learn's bundled dataset descriptions, files in name order."""
    sklearn = require("sklearn", "bench",
                      "the language model's text (scikit-learn's dataset descriptions)")

    descr = Path(str(sklearn.__file__)).parent / "datasets" / "descr"
    lines: list[str] = []
    for path in sorted(descr.glob("*.rst")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    if not lines:
        raise ConfigError(f"no dataset descriptions under {descr}: is scikit-learn complete?")
    return lines


def is_prose(line: str) -> bool:
    """A line of running text (not a table, a heading rule or a field list)."""
    s = line.strip()
    letters = sum(c.isalpha() for c in s)
    return len(s) >= 40 and letters >= 0.7 * len(s) and not s.startswith((":", "..", "="))


def holdout(lines: list[str]) -> tuple[list[str], list[int]]:
    """(training lines, indices of held-out prose lines): a seeded 10% of the prose lines."""
    prose = [i for i, line in enumerate(lines) if is_prose(line)]
    rng = np.random.default_rng(HOLDOUT_SEED)
    k = max(1, int(round(len(prose) * HOLDOUT_FRACTION)))
    held = sorted(int(i) for i in rng.choice(prose, size=k, replace=False))
    keep = set(range(len(lines))) - set(held)
    return [lines[i] for i in sorted(keep)], held


def text_hash(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def encode(text: str, vocab: str) -> np.ndarray:
    """Character ids (0 = a character outside the vocabulary)."""
    index = {c: i + 1 for i, c in enumerate(vocab)}
    return np.fromiter((index.get(c, UNKNOWN_ID) for c in text), dtype=np.int64, count=len(text))


# -- decoding --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    text: str
    confidence: float  # the model's top-1 probability at this position (temperature 1)
    entropy: float  # of that distribution, in nats


@dataclass(frozen=True)
class Generation:
    """What one request produced: the summary that becomes drift features."""

    text: str
    output_tokens: int
    input_tokens: int
    stop_reason: str  # "stop" (a newline) or "length" (max_tokens)
    mean_confidence: float
    mean_entropy: float


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - float(np.max(logits))
    e = np.exp(z)
    return e / e.sum()  # type: ignore[no-any-return]


def pick(logits: np.ndarray, temperature: float, rng: np.random.Generator | None) -> int:
    """Greedy at temperature 0; else one seeded draw from softmax(logits / temperature)."""
    if temperature <= 0 or rng is None:
        return int(np.argmax(logits))
    p = softmax(logits / temperature)
    u = rng.random()
    return int(min(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"), len(p) - 1))


def check_request(prompt: Any, max_tokens: Any, temperature: Any) -> None:
    if not isinstance(prompt, str) or not prompt:
        raise ConfigError('"prompt" must be a non-empty string')
    if len(prompt) > 4096:
        raise ConfigError(f"prompt of {len(prompt)} characters > 4096: shorten it")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or \
            not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise ConfigError(f'"max_tokens" must be an integer in 1..{MAX_TOKENS_LIMIT}, '
                          f"got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or \
            not (math.isfinite(temperature) and 0 <= temperature <= 10):
        raise ConfigError(f'"temperature" must be a number in [0, 10], got {temperature!r}')


def generate(step: Step, vocab: str, prompt: str, max_tokens: int = 64,
             temperature: float = 0.0, seed: int = 0) -> Iterator[Token]:
    """Yield the generated characters one at a time (the prompt is fed step by step first).
    The newline that stops generation is not yielded."""
    check_request(prompt, max_tokens, temperature)
    ids = encode(prompt, vocab)
    hidden = np.zeros((1, HIDDEN_DIM), dtype=np.float32)
    logits = np.zeros(0, dtype=np.float32)
    for t in ids:
        out, hidden = step(np.array([t], dtype=np.int64), hidden)
        logits = out[0]
    rng = np.random.default_rng(seed) if temperature > 0 else None
    for _ in range(max_tokens):
        p = softmax(logits)
        nz = p[p > 0]
        token_id = pick(logits, temperature, rng)
        char = vocab[token_id - 1] if token_id >= 1 else "\ufffd"
        if char == STOP_CHAR:
            return
        yield Token(char, float(p.max()), float(-(nz * np.log(nz)).sum()))
        out, hidden = step(np.array([token_id], dtype=np.int64), hidden)
        logits = out[0]


def summarize(tokens: list[Token], prompt: str, max_tokens: int) -> Generation:
    """The generation's summary; `stop_reason` "length" when it ran to `max_tokens`."""
    n = len(tokens)
    return Generation("".join(t.text for t in tokens), n, len(prompt),
                      "length" if n >= max_tokens else "stop",
                      float(np.mean([t.confidence for t in tokens])) if n else math.nan,
                      float(np.mean([t.entropy for t in tokens])) if n else math.nan)


# -- the two frameworks ----------------------------------------------------------------------
def ort_step(files: LmFiles | None = None, threads: int = 1,
             providers: list[str] | None = None) -> Step:
    """One GRU step in ONNX Runtime."""
    ort = require("onnxruntime", "demo", "running the language model with ONNX Runtime")
    f = files or shipped_lm()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # one step is a few small matrix products
    sess = ort.InferenceSession(str(f.onnx_path), opts,
                                providers=providers or ["CPUExecutionProvider"])
    run = sess.run
    tok, hid = INPUT_NAMES

    def step(token: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, h = run(None, {tok: token, hid: hidden})
        return logits, h

    return step


def build_step_module(vocab_size: int) -> Any:
    """One GRU step as plain layers (embedding, input/hidden projections, head), so the ONNX
    export keeps the parameter names and the torch backend can load its weights back."""
    torch = require("torch", "torch", "the language model in PyTorch")
    nn = torch.nn

    class GruStep(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, EMBED_DIM)
            self.ih = nn.Linear(EMBED_DIM, 3 * HIDDEN_DIM)
            self.hh = nn.Linear(HIDDEN_DIM, 3 * HIDDEN_DIM)
            self.head = nn.Linear(HIDDEN_DIM, vocab_size)

        def forward(self, token: Any, hidden: Any) -> tuple[Any, Any]:
            # torch.nn.GRU's equations and gate order (reset, update, new)
            xr, xz, xn = self.ih(self.embed(token)).chunk(3, dim=-1)
            hr, hz, hn = self.hh(hidden).chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * hidden
            return self.head(h), h

    return GruStep()


def torch_step(files: LmFiles | None = None, device: str = "cpu",
               threads: int | None = None) -> Step:
    """One GRU step in PyTorch, with the weights of the ONNX file."""
    torch = require("torch", "torch", "the torch backend of the language model")
    if threads:
        torch.set_num_threads(threads)
    f = files or shipped_lm()
    module = load_torch_module(f).to(device)
    dev = torch.device(device)

    def step(token: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, h = module(torch.from_numpy(token).to(dev), torch.from_numpy(hidden).to(dev))
            return logits.cpu().numpy(), h.cpu().numpy()

    return step


def load_torch_module(files: LmFiles) -> Any:
    from benchwatch.example.model import onnx_weights

    torch = require("torch", "torch", "the torch backend of the language model")
    module = build_step_module(len(files.vocab) + 1)
    weights = onnx_weights(files.onnx_path)
    wanted = module.state_dict()
    if set(wanted) - set(weights) or any(weights[k].shape != tuple(v.shape)
                                         for k, v in wanted.items()):
        raise ConfigError(f"{files.onnx_path} does not hold the language model's weights "
                          f"({sorted(wanted)}): retrain it")
    module.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in wanted})
    module.eval()
    return module


def make_step(backend: str, files: LmFiles | None = None, device: str = "cpu",
              threads: int | None = None) -> Step:
    if backend == "onnxruntime":
        providers = None
        if device.startswith("cuda"):
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ort_step(files, threads or 1, providers)
    if backend == "torch":
        return torch_step(files, device, threads)
    raise ConfigError(f"backend must be onnxruntime or torch, got {backend!r}")
