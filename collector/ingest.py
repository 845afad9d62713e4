"""Validate sample batches and append them to the windows, counting rejections per reason.

Every item is checked on its own: a bad item is rejected (counted under a short reason code that
becomes a metric label) and never partially written; good items in the same batch are stored in
one transaction. `ingest` never raises because of what it was given.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from collector.errors import CollectorConfigError
from collector.windows import Feature, WindowStore
from probes.errors import BenchwatchError
from probes.samples import (
    EARLIEST_TIMESTAMP,
    MAX_FEATURES,
    MAX_FUTURE_S,
    MAX_NAME_LEN,
    MAX_VECTOR_LEN,
    Sample,
    SampleError,
    check_feature,
    check_timestamp,
    is_text,
)
from probes.samples import MAX_STRING_LEN as MAX_STR_LEN

log = logging.getLogger(__name__)

MAX_ID_LEN = MAX_NAME_LEN
INPUT_PREFIX = "input."

Accept = Callable[[str, str], bool]
Schema = Callable[[str, str], Collection[str] | None]

# What one collector keeps windows for, so that senders cannot grow the store without limit
# (every new model version or feature name is a window that stays): model versions, and
# features per model version (a sample may carry up to 2 x MAX_FEATURES; a digits classifier
# sends 3). Samples past a cap are rejected (`too_many_models`, `too_many_features`); windows
# that exist keep being fed. None = no cap (the drift service: its baselines bound both).
DEFAULT_MAX_MODELS = 64
DEFAULT_MAX_FEATURES = 256


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


# The HTTP ingest body: {"samples": [Sample.to_dict(), ...]}, optionally with
# "schema_version": 1. Anything else at the top level is refused rather than ignored: a sender
# speaking a newer format must hear that this collector cannot read it, not lose data silently.
ENVELOPE_VERSION = 1
ENVELOPE_KEYS = ("samples", "schema_version")


def envelope_problem(payload: object) -> str | None:
    """What is wrong with an HTTP ingest body (a clear message for a 4xx), or None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("samples"), list):
        return 'send {"samples": [sample, ...]} (a JSON object with a list)'
    unknown = [k for k in payload if k not in ENVELOPE_KEYS]
    if unknown:
        return (f"unknown top-level field {str(unknown[0])[:40]!r}; allowed: "
                f"{', '.join(ENVELOPE_KEYS)}")
    version = payload.get("schema_version", ENVELOPE_VERSION)
    if type(version) is not int or version != ENVELOPE_VERSION:
        return (f"schema_version {str(version)[:40]} is not supported: this collector reads "
                f"schema_version {ENVELOPE_VERSION} (or none); upgrade the collector or send "
                f"version {ENVELOPE_VERSION}")
    return None


class Rejected(BenchwatchError):
    """Internal: a sample failed validation (`reason` is the metric label)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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
            if not is_text(name):
                raise Rejected("invalid_text", f"feature name {ascii(name)} is not valid "
                                               "Unicode text (a lone surrogate)")
            key = name if (not prefix or name not in flat) else prefix + name
            try:
                flat[key] = check_feature(value, f"feature {name!r}")
            except SampleError as exc:
                raise Rejected(exc.reason, exc.message) from exc
    return flat


def _check_sample(sample: Sample) -> None:
    for attr in ("model", "version", "sample_id"):
        value = getattr(sample, attr)
        if not isinstance(value, str) or not value:
            raise Rejected("missing_field" if not value else "wrong_type",
                           f"{attr} must be a non-empty string")
        if len(value) > MAX_ID_LEN:
            raise Rejected("too_large", f"{attr} is {len(value)} chars (max {MAX_ID_LEN})")
        if not is_text(value):
            raise Rejected("invalid_text", f"{attr} {ascii(value)} is not valid Unicode text "
                                           "(a lone surrogate)")
    ts = sample.timestamp
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise Rejected("wrong_type", "timestamp must be a number (unix seconds)")
    if not math.isfinite(ts):
        raise Rejected("not_finite", f"timestamp is {ts}")
    try:
        check_timestamp(ts)
    except SampleError as exc:
        raise Rejected(exc.reason, exc.message) from exc


_FIELDS = frozenset(("model", "version", "sample_id", "timestamp", "outputs", "inputs",
                     "latency_s"))
_REQUIRED = frozenset(("model", "version", "sample_id", "timestamp", "outputs"))
_Row = tuple[str, str, str, float, Mapping[str, Feature], dict[str, Feature]]


def _plain_features(source: object, flat: dict[str, Feature], prefix: str) -> bool:
    """Add `source`'s features to `flat` when every one is already in its stored form
    (exact str names; finite float, str, None or a tuple of finite floats); False as soon as
    one is not, for the generic path to judge (and name the reason). Exact `type() is` checks:
    isinstance against Mapping/ABCs costs ~10x more; text that is not ASCII goes the generic
    way too (it may hold a lone surrogate)."""
    t = type(source)
    if t is not dict and t is not MappingProxyType:
        return False
    if len(source) > MAX_FEATURES:  # type: ignore[arg-type]
        return False
    for name, value in source.items():  # type: ignore[attr-defined]
        if type(name) is not str or not name or len(name) > MAX_NAME_LEN or not name.isascii():
            return False
        vt = type(value)
        if vt is float:
            if value - value != 0.0:  # inf or nan
                return False
        elif vt is str:
            if len(value) > MAX_STR_LEN or not value.isascii():
                return False
        elif vt is tuple or vt is list:  # JSON gives vectors as lists
            if len(value) > MAX_VECTOR_LEN:
                return False
            for x in value:
                if type(x) is not float or x - x != 0.0:
                    return False
            if vt is list:
                value = tuple(value)
        elif value is not None:
            return False
        if prefix and name in flat:
            flat[prefix + name] = value
        else:
            flat[name] = value
    return True


def _fast_row(item: object, latest: float) -> _Row | None:
    """The storable row of a well-formed sample (a Sample, or a dict as JSON/Kafka give it)
    checked with exact types only; None when anything is unusual, so that the generic,
    reason-giving validation decides instead. Accepts nothing the generic path rejects.
    `latest`: the newest timestamp accepted (now + MAX_FUTURE_S, read once per batch)."""
    t = type(item)
    if t is dict:
        d: Any = item
        if not (d.keys() <= _FIELDS and _REQUIRED <= d.keys()):
            return None
        model, version, sid, ts = d["model"], d["version"], d["sample_id"], d["timestamp"]
        outputs, inputs, latency = d["outputs"], d.get("inputs"), d.get("latency_s")
    elif t is Sample:
        s: Any = item
        model, version, sid, ts = s.model, s.version, s.sample_id, s.timestamp
        outputs, inputs, latency = s.outputs, s.inputs, s.latency_s
    else:
        return None
    if (type(model) is not str or type(version) is not str or type(sid) is not str
            or not 0 < len(model) <= MAX_ID_LEN or not 0 < len(version) <= MAX_ID_LEN
            or not 0 < len(sid) <= MAX_ID_LEN
            or not (model.isascii() and version.isascii() and sid.isascii())):
        return None
    if type(ts) is not float or not EARLIEST_TIMESTAMP <= ts <= latest:  # nan fails too
        return None
    if latency is not None and (type(latency) is not float or not 0.0 <= latency < math.inf):
        return None
    flat: dict[str, Feature] = {}
    if not _plain_features(outputs, flat, ""):
        return None
    if inputs is not None and not _plain_features(inputs, flat, INPUT_PREFIX):
        return None
    return (sid, model, version, ts, outputs, flat)


@dataclass
class _ModelCheck:
    """What one batch learns about one (model, version), asked once per batch."""

    refused: Rejected | None  # every sample of the model is rejected with this
    required: tuple[str, ...]  # features each sample must carry
    allowed: frozenset[str] | None  # the only features a sample may carry (None: any)
    features: AbstractSet[str]  # features the model has windows for (grows in the batch)
    plain: bool = False  # no allowed or required set: only new features need a check

    def __post_init__(self) -> None:
        self.plain = self.allowed is None and not self.required


class Collector:
    """Validates and stores sample batches; counts outcomes (totals since start or `reset`).

    `accept(model, version)` says whether the model is known (else `unknown_model`);
    `schema(model, version)` optionally names the features every sample must carry (else
    `missing_feature`); return None from it for "no requirement". `features(model, version)`
    optionally names the only features a sample may carry (else `unknown_feature`).
    `max_models` caps the model versions with windows (else `too_many_models`) and
    `max_features` the features per model version (else `too_many_features`); None = no cap.
    """

    def __init__(self, store: WindowStore, accept: Accept = lambda m, v: True,
                 schema: Schema | None = None, *, features: Schema | None = None,
                 max_models: int | None = DEFAULT_MAX_MODELS,
                 max_features: int | None = DEFAULT_MAX_FEATURES) -> None:
        for what, cap in (("max_models", max_models), ("max_features", max_features)):
            if cap is not None and cap < 1:
                raise CollectorConfigError(f"{what} must be >= 1 (or None for no cap), got {cap}")
        self.store = store
        self.accept = accept
        self.schema = schema
        self.features = features
        self.max_models = max_models
        self.max_features = max_features
        self._lock = threading.Lock()
        self._accepted = 0
        self._duplicates = 0
        self._rejected: Counter[str] = Counter()
        self._logged_reasons: set[str] = set()

    def _validate(self, item: object) -> _Row:
        """The generic path: any Mapping or Sample, every problem named by its reason."""
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
        return (sample.sample_id, sample.model, sample.version, float(sample.timestamp),
                {k: features[k] for k in (sample.outputs or {}) if k in features}, features)

    def _model_check(self, model: str, version: str, new_models: int) -> _ModelCheck:
        """What the callbacks and the store say about a model version (once per batch);
        `new_models`: model versions this batch already added."""
        try:
            known = bool(self.accept(model, version))
        except Exception:  # a misbehaving callback must not crash ingest
            log.exception("accept(%r, %r) raised", model, version)
            known = False
        if not known:
            return _ModelCheck(Rejected("unknown_model",
                                        f"no baseline for model {model!r} version {version!r}"),
                               (), None, frozenset())
        existing = self.store.feature_set(model, version)
        if (not existing and self.max_models is not None
                and self.store.model_count() + new_models >= self.max_models):
            return _ModelCheck(Rejected(
                "too_many_models",
                f"the collector keeps windows for at most {self.max_models} model versions; "
                f"{model!r} {version!r} would be one more (raise --max-models, or allow only "
                "your models with --model)"), (), None, frozenset())
        required = tuple(self.schema(model, version) or ()) if self.schema is not None else ()
        allowed = None
        if self.features is not None:
            names = self.features(model, version)
            allowed = None if names is None else frozenset(names)
        return _ModelCheck(None, required, allowed, existing)

    def _check_features(self, check: _ModelCheck, names: AbstractSet[str]) -> None:
        """Rejects a sample whose features are not allowed, lack a required one, or would
        take its model past `max_features`; else counts its new features as the model's."""
        if check.allowed is not None and not names <= check.allowed:
            unknown = sorted(set(names) - check.allowed)
            raise Rejected("unknown_feature",
                           f"features {unknown[:5]} are not in the baseline (it has "
                           f"{sorted(check.allowed)[:20]})")
        if check.required:
            missing = [f for f in check.required if f not in names]
            if missing:
                raise Rejected("missing_feature", f"sample lacks features {sorted(missing)}")
        if self.max_features is not None and not names <= check.features:
            known = check.features
            new = [f for f in names if f not in known]
            if len(known) + len(new) > self.max_features:
                raise Rejected("too_many_features",
                               f"the model would have {len(known) + len(new)} features; the "
                               f"collector keeps at most {self.max_features} per model version "
                               "(raise --max-features)")
            check.features = set(known) | set(new)

    def ingest(self, items: Iterable[Sample | Mapping[str, Any]]) -> IngestReport:
        """Validate each item, store the good ones in one transaction, report per reason.

        Well-formed items (exact types) take a fast check; anything else goes through the
        generic validation, which names the reason. Model checks run once per model per batch.
        """
        rejected: Counter[str] = Counter()
        good: list[_Row] = []
        seen: set[str] = set()
        models: dict[tuple[str, str], _ModelCheck] = {}
        new_models = 0
        in_batch_dupes = 0
        try:
            iterator = iter(items)
        except TypeError:
            rejected["wrong_type"] += 1
            iterator = iter(())
        fast = _fast_row
        latest = time.time() + MAX_FUTURE_S
        for item in iterator:
            row = fast(item, latest)
            try:
                if row is None:
                    row = self._validate(item)
                mv = (row[1], row[2])
                check = models.get(mv)
                if check is None:
                    check = models[mv] = self._model_check(mv[0], mv[1], new_models)
                    if check.refused is None and not check.features:
                        new_models += 1
                if check.refused is not None:
                    raise check.refused
                names = row[5].keys()
                if not (check.plain and names <= check.features):  # else nothing to check
                    self._check_features(check, names)
            except Rejected as exc:
                rejected[exc.reason] += 1
                self._log_once(exc.reason, str(exc))
                continue
            except Exception as exc:  # never let one odd item break the batch
                rejected["invalid"] += 1
                self._log_once("invalid", f"{type(exc).__name__}: {exc}")
                continue
            sid = row[0]
            if sid in seen:
                in_batch_dupes += 1
                continue
            seen.add(sid)
            good.append(row)
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
