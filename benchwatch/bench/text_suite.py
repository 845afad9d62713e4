"""Text suites for generative models: prompts (and the reference continuation) with a content hash.

On disk a text suite is one JSON file, `{"format": "benchwatch-text-suite/1", "name", "metadata",
"prompts": [...], "expected": [...], "content_hash"}`; the hash covers the prompts, the expected
continuations and the canonical metadata, so a changed character is caught at load time. The
built-in `text` suite ships inside this package: the first words of the description lines the
example language model never saw in training (`benchwatch.example.lm.holdout`), with the rest of
each line as the expected continuation. `metadata` gives the decoding every backend uses
(`max_tokens`, `temperature`: 0 = greedy, the same text from torch and ONNX Runtime).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchwatch.bench.suites import BUILTIN_DIR, SuiteError

FORMAT = "benchwatch-text-suite/1"
BUILTIN = ("text",)
MAX_PROMPTS = 100_000
MAX_BYTES = 64 << 20  # a text suite is read whole


@dataclass(frozen=True)
class TextSuite:
    name: str
    prompts: tuple[str, ...]
    expected: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def max_tokens(self) -> int:
        return int(self.metadata.get("max_tokens", 64))

    @property
    def temperature(self) -> float:
        return float(self.metadata.get("temperature", 0.0))


def content_hash(prompts: tuple[str, ...], expected: tuple[str, ...],
                 metadata: Mapping[str, Any]) -> str:
    doc = {"prompts": list(prompts), "expected": list(expected), "metadata": dict(metadata)}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False).encode()).hexdigest()


def make_text_suite(name: str, prompts: list[str], expected: list[str],
                    metadata: Mapping[str, Any]) -> TextSuite:
    p, e, meta = tuple(prompts), tuple(expected), dict(metadata)
    if not p or len(p) != len(e) or len(p) > MAX_PROMPTS:
        raise SuiteError(f"text suite {name!r}: {len(p)} prompts and {len(e)} expected "
                         f"continuations: give 1..{MAX_PROMPTS} of each, as many of both")
    if not all(isinstance(s, str) and s for s in p) or not all(isinstance(s, str) for s in e):
        raise SuiteError(f"text suite {name!r}: prompts must be non-empty strings and expected "
                         "continuations strings")
    return TextSuite(name, p, e, meta, content_hash(p, e, meta))


def save_text_suite(suite: TextSuite, directory: str | Path) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "name": suite.name, "content_hash": suite.content_hash,
           "n": len(suite), "metadata": dict(suite.metadata), "prompts": list(suite.prompts),
           "expected": list(suite.expected)}
    path = d / f"{suite.name}.json"
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")  # format first
    return path


def _path(name_or_path: str | Path) -> Path:
    raw = str(name_or_path)
    if raw in BUILTIN and not Path(raw).exists():
        return BUILTIN_DIR / f"{raw}.json"
    p = Path(raw)
    return p if p.suffix == ".json" else p.with_suffix(".json")


def is_text_suite(name_or_path: str | Path) -> bool:
    """True for a built-in text suite's name or a JSON file in the text-suite format."""
    if str(name_or_path) in BUILTIN and not Path(str(name_or_path)).exists():
        return True
    path = _path(name_or_path)
    try:
        with path.open("rb") as f:
            head = f.read(MAX_BYTES)
        doc = json.loads(head) if FORMAT.encode() in head else None
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def load_text_suite(name_or_path: str | Path) -> TextSuite:
    """A built-in text suite by name (`text`) or one from `PATH.json`."""
    path = _path(name_or_path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SuiteError(f"no text suite at {str(name_or_path)!r} ({e}): pass a built-in name "
                         f"({', '.join(BUILTIN)}) or a {FORMAT} JSON file") from e
    except ValueError as e:
        raise SuiteError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SuiteError(f"{path}: not a {FORMAT} file")
    prompts, expected, meta = doc.get("prompts"), doc.get("expected"), doc.get("metadata") or {}
    if not isinstance(prompts, list) or not isinstance(expected, list) or \
            not isinstance(meta, dict):
        raise SuiteError(f"{path}: prompts and expected must be lists, metadata an object")
    suite = make_text_suite(str(doc.get("name", path.stem)), prompts, expected, meta)
    if suite.content_hash != doc.get("content_hash"):
        raise SuiteError(f"{path}: content hash mismatch (file says {doc.get('content_hash')}, "
                         f"data hashes to {suite.content_hash}); the suite was modified or "
                         "corrupted: rebuild it")
    return suite


def build_text_suite(max_tokens: int = 64) -> TextSuite:
    """The example language model's held-out description lines: a prompt at every word
    boundary of each (the first word, the first two, ...), the rest of the line expected."""
    from benchwatch.example import lm

    files = lm.shipped_lm()
    lines = lm.corpus_lines()
    if lm.text_hash(lines) != files.meta["text_sha256"]:
        raise SuiteError("scikit-learn's dataset descriptions differ from those the shipped "
                         "language model was trained on: retrain it (python -m "
                         "benchwatch.example.lm_train) and build the suite from that")
    prompts, expected = [], []
    for i in files.meta["heldout_lines"]:
        line = lines[i].strip()
        words = line.split(" ")
        for k in range(1, len(words) - 1):  # every word boundary but the last: ~8 a line
            prompt = " ".join(words[:k]) + " "
            if prompt.strip():
                prompts.append(prompt)
                expected.append(line[len(prompt):])
    meta = {"model": lm.MODEL_NAME, "task": "generation", "max_tokens": max_tokens,
            "temperature": 0.0, "stop": "newline",
            "source": "scikit-learn dataset descriptions, lines held out of the example "
                      "language model's training (benchwatch.example.lm.holdout)"}
    return make_text_suite("text", prompts, expected, meta)
