"""Validate sample batches and append them to the windows, counting rejections per reason.

Every item is checked on its own: a bad item is rejected (counted under a short reason code that
becomes a metric label) and never partially written; good items in the same batch are stored in
one transaction. `ingest` never raises because of what it was given.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from collector.windows import Feature, WindowStore
from probes.samples import (
    MAX_FEATURES,
    MAX_NAME_LEN,
    MAX_VECTOR_LEN,
    Sample,
    SampleError,
)
from probes.samples import MAX_STRING_LEN as MAX_STR_LEN

log = logging.getLogger(__name__)

MAX_ID_LEN = MAX_NAME_LEN
INPUT_PREFIX = "input."

Accept = Callable[[str, str], bool]
Schema = Callable[[str, str], Collection[str] | None]


@dataclass(frozen=True)
class IngestReport:
    """What happened to one batch: `rejected` maps reason code -> count."""

    accepted: int
    duplicates: int
    rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": dict(self.rejected)}


class Rejected(Exception):
    """Internal: a sample failed validation (`reason` is the metric label)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_value(name: str, value: object) -> Feature:
    if value is None:
        return None  # a missing value: kept, its rate is itself a drift signal
    if isinstance(value, bool):
        raise Rejected("wrong_type", f"feature {name!r} is a bool; send a number or a string")
    if isinstance(value, int | float):
        f = float(value)
        if not math.isfinite(f):
            raise Rejected("not_finite", f"feature {name!r} is {f}")
        return f
    if isinstance(value, str):
        if len(value) > MAX_STR_LEN:
            raise Rejected("too_large", f"feature {name!r} is a string of {len(value)} chars")
        return value
    if isinstance(value, tuple | list):
        if len(value) > MAX_VECTOR_LEN:
            raise Rejected("too_large", f"feature {name!r} is a vector of {len(value)}")
        out = []
        for x in value:
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise Rejected("wrong_type", f"feature {name!r} holds a {type(x).__name__}")
            if not math.isfinite(x):
                raise Rejected("not_finite", f"feature {name!r} holds {x}")
            out.append(float(x))
        return tuple(out)
    raise Rejected("wrong_type", f"feature {name!r} is a {type(value).__name__}")


def flatten_features(sample: Sample) -> dict[str, Feature]:
    """One flat name -> value mapping per sample: outputs by name, then inputs by name
    (an input named like an output becomes `input.<name>`), validated."""
    outputs = sample.outputs or {}
    inputs = sample.inputs or {}
    if len(outputs) + len(inputs) > 2 * MAX_FEATURES:
        raise Rejected("too_large", f"{len(outputs) + len(inputs)} features (max {MAX_FEATURES} each)")
    flat: dict[str, Feature] = {}
    for source, prefix in ((outputs, ""), (inputs, INPUT_PREFIX)):
        if not isinstance(source, Mapping):
            raise Rejected("wrong_type", "outputs and inputs must be objects of name -> value")
        for name, value in source.items():
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
                raise Rejected("wrong_type", f"feature name {name!r} is not a short string")
            key = name if (not prefix or name not in flat) else prefix + name
            flat[key] = _check_value(name, value)
    return flat


def _check_sample(sample: Sample) -> None:
    for attr in ("model", "version", "sample_id"):
        value = getattr(sample, attr)
        if not isinstance(value, str) or not value:
            raise Rejected("missing_field" if not value else "wrong_type",
                           f"{attr} must be a non-empty string")
        if len(value) > MAX_ID_LEN:
            raise Rejected("too_large", f"{attr} is {len(value)} chars (max {MAX_ID_LEN})")
    ts = sample.timestamp
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise Rejected("wrong_type", "timestamp must be a number (unix seconds)")
    if not math.isfinite(ts):
        raise Rejected("not_finite", f"timestamp is {ts}")


class Collector:
    """Validates and stores sample batches; counts outcomes (totals since start or `reset`).

    `accept(model, version)` says whether the model is known (else `unknown_model`);
    `schema(model, version)` optionally names the features every sample must carry (else
    `missing_feature`); return None from it for "no requirement".
    """

    def __init__(self, store: WindowStore, accept: Accept = lambda m, v: True,
                 schema: Schema | None = None) -> None:
        self.store = store
        self.accept = accept
        self.schema = schema
        self._lock = threading.Lock()
        self._accepted = 0
        self._duplicates = 0
        self._rejected: Counter[str] = Counter()
        self._logged_reasons: set[str] = set()

    def _validate(self, item: object) -> tuple[Sample, dict[str, Feature]]:
        if isinstance(item, Sample):
            sample = item
        elif isinstance(item, Mapping):
            try:
                sample = Sample.from_dict(dict(item))
            except SampleError as exc:
                raise Rejected(str(getattr(exc, "reason", "invalid")), str(exc)) from exc
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise Rejected("invalid", f"cannot read sample: {exc}") from exc
        else:
            raise Rejected("not_a_mapping",
                           f"a sample must be an object, got {type(item).__name__}")
        _check_sample(sample)
        features = flatten_features(sample)
        try:
            known = self.accept(sample.model, sample.version)
        except Exception:  # a misbehaving callback must not crash ingest
            log.exception("accept(%r, %r) raised", sample.model, sample.version)
            known = False
        if not known:
            raise Rejected("unknown_model",
                           f"no baseline for model {sample.model!r} version {sample.version!r}")
        if self.schema is not None:
            required = self.schema(sample.model, sample.version)
            missing = [f for f in (required or ()) if f not in features]
            if missing:
                raise Rejected("missing_feature", f"sample lacks features {sorted(missing)}")
        return sample, features

    def ingest(self, items: Iterable[Sample | Mapping[str, Any]]) -> IngestReport:
        """Validate each item, store the good ones in one transaction, report per reason."""
        rejected: Counter[str] = Counter()
        good = []
        seen: set[str] = set()
        in_batch_dupes = 0
        try:
            iterator = iter(items)
        except TypeError:
            rejected["wrong_type"] += 1
            iterator = iter(())
        for item in iterator:
            try:
                sample, features = self._validate(item)
            except Rejected as exc:
                rejected[exc.reason] += 1
                self._log_once(exc.reason, str(exc))
                continue
            except Exception as exc:  # never let one odd item break the batch
                rejected["invalid"] += 1
                self._log_once("invalid", f"{type(exc).__name__}: {exc}")
                continue
            if sample.sample_id in seen:
                in_batch_dupes += 1
                continue
            seen.add(sample.sample_id)
            good.append((sample.sample_id, sample.model, sample.version, float(sample.timestamp),
                         {k: features[k] for k in sample.outputs if k in features}, features))
        accepted, duplicates = self.store.add(good) if good else (0, 0)
        duplicates += in_batch_dupes
        with self._lock:
            self._accepted += accepted
            self._duplicates += duplicates
            self._rejected.update(rejected)
        return IngestReport(accepted, duplicates, MappingProxyType(dict(rejected)))

    def _log_once(self, reason: str, message: str) -> None:
        if reason not in self._logged_reasons:
            self._logged_reasons.add(reason)
            log.warning("rejected a sample (%s): %s (further rejections are only counted)",
                        reason, message)

    def totals(self) -> IngestReport:
        """Counts since start (or the last `reset`)."""
        with self._lock:
            return IngestReport(self._accepted, self._duplicates,
                                MappingProxyType(dict(self._rejected)))

    def reset(self) -> None:
        with self._lock:
            self._accepted = self._duplicates = 0
            self._rejected.clear()
            self._logged_reasons.clear()
