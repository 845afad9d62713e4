"""Delayed labels: `POST /v1/labels` joins labels to the predictions the collector kept, by
sample id, and keeps a bounded record of hits per (model, version) for realized accuracy.

The record survives a restart (kept in the window store's metadata as a compact 0/1 string).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from collector import WindowStore

log = logging.getLogger(__name__)

PREDICTION_FEATURE = "predicted_class"
MAX_LABELS_PER_POST = 10_000
# fairness slices named by the label's sender ({"slice": "..."}): per (model, version) at most
# this many, later ones counted as OTHER_SLICE; kept in memory only (they restart empty)
MAX_SLICES = 50
OTHER_SLICE = "_other"


def _meta_key(model: str, version: str) -> str:
    return f"labels\x1f{model}\x1f{version}"


class LabelStore:
    def __init__(self, store: WindowStore, window: int = 5000,
                 prediction_feature: str = PREDICTION_FEATURE) -> None:
        self.store = store
        self.window = window
        self.prediction_feature = prediction_feature
        self._hits: dict[tuple[str, str], deque[bool]] = {}
        self._lock = threading.Lock()
        self._labelled: set[str] = set()  # ids labelled since start (bounded below)
        self._labelled_order: deque[str] = deque()
        self._slice_hits: dict[tuple[str, str], dict[str, deque[bool]]] = {}

    def _deque(self, model: str, version: str) -> deque[bool]:
        key = (model, version)
        d = self._hits.get(key)
        if d is None:
            saved = self.store.meta_get(_meta_key(model, version)) or ""
            d = deque((c == "1" for c in saved), maxlen=self.window)
            self._hits[key] = d
        return d

    def receive(self, payload: Any) -> tuple[int, Any]:
        """`{"labels": [{"sample_id": "...", "label": "3"}, ...]}` -> counts."""
        if not isinstance(payload, Mapping) or not isinstance(payload.get("labels"), list):
            return 400, {"error": 'send {"labels": [{"sample_id": ..., "label": ...}, ...]}'}
        items = payload["labels"]
        if len(items) > MAX_LABELS_PER_POST:
            return 413, {"error": f"{len(items)} labels in one post; at most {MAX_LABELS_PER_POST}"}
        rejected: Counter[str] = Counter()
        wanted: dict[str, str] = {}
        slices: dict[str, str] = {}  # sample id -> the fairness slice its sender named
        for item in items:
            if not isinstance(item, Mapping):
                rejected["not_a_mapping"] += 1
                continue
            sid, label = item.get("sample_id"), item.get("label")
            if not isinstance(sid, str) or not sid or len(sid) > 128:
                rejected["missing_field" if sid is None else "wrong_type"] += 1
                continue
            if isinstance(label, bool) or not isinstance(label, str | int) or label == "":
                rejected["missing_field" if label is None else "wrong_type"] += 1
                continue
            slice_ = item.get("slice")
            if slice_ is not None and (not isinstance(slice_, str) or not 0 < len(slice_) <= 64):
                rejected["wrong_type"] += 1
                continue
            wanted[sid] = str(label)
            if slice_ is not None:
                slices[sid] = slice_
        known = self.store.samples(wanted)
        matched = duplicates = no_prediction = 0
        touched: set[tuple[str, str]] = set()
        with self._lock:
            for sid, label in wanted.items():
                sample = known.get(sid)
                if sample is None:
                    continue
                predicted = sample.outputs.get(self.prediction_feature)
                if predicted is None:
                    no_prediction += 1
                    continue
                if sid in self._labelled:
                    duplicates += 1
                    continue
                self._remember(sid)
                hit = str(predicted) == label
                self._deque(sample.model, sample.version).append(hit)
                if sid in slices:
                    self._slice_deque(sample.model, sample.version, slices[sid]).append(hit)
                touched.add((sample.model, sample.version))
                matched += 1
            saved = {k: "".join("1" if h else "0" for h in self._hits[k]) for k in touched}
        for (m, v), text in saved.items():
            self.store.meta_set(_meta_key(m, v), text)
        unknown = len(wanted) - len(known)
        if no_prediction:
            rejected["no_prediction"] += no_prediction
        return 200, {"matched": matched, "unknown_sample": unknown, "duplicates": duplicates,
                     "rejected": dict(rejected)}

    def _remember(self, sid: str) -> None:
        self._labelled.add(sid)
        self._labelled_order.append(sid)
        if len(self._labelled_order) > 10 * self.window:
            self._labelled.discard(self._labelled_order.popleft())

    def _slice_deque(self, model: str, version: str, slice_: str) -> deque[bool]:
        per = self._slice_hits.setdefault((model, version), {})
        if slice_ not in per and len(per) >= MAX_SLICES:
            slice_ = OTHER_SLICE
        return per.setdefault(slice_, deque(maxlen=self.window))

    def realized_slices(self, model: str, version: str) -> dict[str, tuple[float, int]]:
        """Per fairness slice named with the labels: (accuracy, labelled samples)."""
        with self._lock:
            return {s: (sum(d) / len(d), len(d))
                    for s, d in self._slice_hits.get((model, version), {}).items() if d}

    def realized(self, model: str, version: str) -> tuple[float, int] | None:
        """(accuracy, labelled samples) over the last `window` labels, or None without labels."""
        with self._lock:
            d = self._deque(model, version)
            if not d:
                return None
            return sum(d) / len(d), len(d)

    def reset(self) -> None:
        with self._lock:
            for (m, v) in self._hits:
                self.store.meta_set(_meta_key(m, v), "")
            self._hits.clear()
            self._slice_hits.clear()
            self._labelled.clear()
            self._labelled_order.clear()
