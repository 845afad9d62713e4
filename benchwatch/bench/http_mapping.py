"""How the HTTP backend talks to an endpoint that is not benchwatch's example server.

Two ways, documented in docs/bench.md ("Your own endpoint"):
- JSON mapping: a request body template in which the string `"$inputs"` stands for the batch
  (a list of rows, each a list of numbers) or `"$input"` for one row (each row then goes in its
  own request), and dotted paths into the response: where the per-class scores are
  (`probabilities`, `result.scores`, `predictions.*.proba`; `*` maps over a list, a number
  indexes one) or, for an endpoint that answers labels only, where the labels are (a suite
  class name, or else the class's index).
- An adapter, `module:function`: `function(batch, post)` gets the batch (numpy, rows x
  features) and `post(body)`, which sends `body` as JSON to the endpoint and returns the
  decoded JSON answer; it returns the scores (rows x classes). Imported like any Python code
  the user runs: it is the user's own module.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchwatch.errors import UsageError
from probes.errors import BenchwatchError

BATCH, ROW = "$inputs", "$input"
DEFAULT_TEMPLATE = '{"inputs": "$inputs"}'
DEFAULT_SCORES = "outputs"
Post = Callable[[Any], Any]
Adapter = Callable[[np.ndarray, Post], Any]


class MappingError(BenchwatchError, ValueError):
    """A response did not hold what the mapping says it holds (the backend reports it)."""


def _placeholders(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node} & {BATCH, ROW}
    if isinstance(node, dict):
        return set().union(*(_placeholders(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_placeholders(v) for v in node)) if node else set()
    return set()


def _fill(node: Any, value: Any) -> Any:
    if isinstance(node, str) and node in (BATCH, ROW):
        return value
    if isinstance(node, dict):
        return {k: _fill(v, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, value) for v in node]
    return node


def resolve(doc: Any, path: str) -> Any:
    """The value at a dotted path (`a.b`, `preds.*.p`, `rows.0`; a leading `$.` is allowed)."""
    parts = [p for p in path.removeprefix("$").removeprefix(".").split(".") if p]

    def walk(node: Any, i: int) -> Any:
        if i == len(parts):
            return node
        key = parts[i]
        if key == "*":
            if not isinstance(node, list):
                raise MappingError(f"{'.'.join(parts[:i]) or 'the response'} is not a list")
            return [walk(x, i + 1) for x in node]
        if isinstance(node, list) and key.lstrip("-").isdigit():
            return walk(node[int(key)], i + 1)
        if not isinstance(node, dict) or key not in node:
            where = ".".join(parts[:i]) or "the response"
            keys = sorted(node)[:10] if isinstance(node, dict) else type(node).__name__
            raise MappingError(f"{where} has no {key!r} (has {keys})")
        return walk(node[key], i + 1)

    return walk(doc, 0)


@dataclass(frozen=True)
class JsonMapping:
    """Request template and response paths (see the module doc)."""

    template: Any
    per_row: bool  # "$input": one request per row
    scores: str | None = DEFAULT_SCORES
    labels: str | None = None  # labels only: one-hot scores over `classes`
    classes: tuple[str, ...] = ()  # the suite's class labels, in score-column order

    @staticmethod
    def parse(template: str | None, scores: str | None, labels: str | None,
              classes: Sequence[str] = ()) -> JsonMapping:
        text = template or DEFAULT_TEMPLATE
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"--request-template is not JSON ({e}): write e.g. "
                             '\'{"features": "$inputs"}\'') from None
        found = _placeholders(doc)
        if len(found) != 1:
            raise UsageError(f"--request-template {text}: put exactly one of \"$inputs\" (the "
                             "batch, a list of rows) or \"$input\" (one row per request) where "
                             "the numbers go")
        if labels and scores:
            raise UsageError("pass --response-scores or --response-labels, not both")
        if labels and not classes:
            raise UsageError("--response-labels needs a suite that names its classes "
                             "(`benchwatch suite build` records them)")
        return JsonMapping(doc, ROW in found, None if labels else (scores or DEFAULT_SCORES),
                           labels, tuple(classes))

    def bodies(self, batch: np.ndarray) -> list[Any]:
        """The request bodies (JSON-able) for a batch: one, or one per row."""
        if self.per_row:
            return [_fill(self.template, row.tolist()) for row in batch]
        return [_fill(self.template, batch.tolist())]

    def scores_of(self, answers: list[Any], n_rows: int) -> np.ndarray:
        """The (rows, classes) scores from the decoded answers."""
        parts = []
        for doc in answers:
            if self.labels:
                got = resolve(doc, self.labels)
                labels = got if isinstance(got, list) else [got]
                parts.append(self._one_hot(labels))
            else:
                arr = np.asarray(resolve(doc, self.scores or DEFAULT_SCORES), dtype=np.float32)
                parts.append(arr.reshape(1, -1) if self.per_row and arr.ndim == 1 else arr)
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if out.ndim != 2 or out.shape[0] != n_rows:
            raise MappingError(f"expected {n_rows} rows of scores at "
                               f"{self.labels or self.scores!r}, got shape {out.shape}")
        return out

    def _one_hot(self, labels: list[Any]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.zeros((len(labels), len(self.classes)), dtype=np.float32)
        for r, label in enumerate(labels):
            key = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)
            k = index.get(key)
            if k is None and key.isdigit() and int(key) < len(self.classes):
                k = int(key)  # not a class name: the class's index (score column)
            if k is None:
                raise MappingError(f"label {label!r} is neither one of the suite's classes "
                                   f"{list(self.classes)[:10]} nor an index into them")
            out[r, k] = 1.0
        return out


def load_adapter(spec: str) -> Adapter:
    """`module:function` -> the function (the user's own code, imported from sys.path)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise UsageError(f"--adapter {spec!r}: write MODULE:FUNCTION, e.g. my_adapter:predict")
    try:
        fn = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise UsageError(f"--adapter {spec}: cannot import {module!r} ({e}); run from the "
                         "directory that holds it or add it to PYTHONPATH") from None
    except AttributeError:
        raise UsageError(f"--adapter {spec}: module {module!r} has no {name!r}") from None
    if not callable(fn):
        raise UsageError(f"--adapter {spec}: {name!r} is not a function")
    return fn  # type: ignore[no-any-return]
