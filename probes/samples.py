"""Per-request summaries for the drift pipeline: the `Sample` record and the `Sink` protocol.

`Sample.to_dict()` gives a JSON-safe dict; `Sample.from_dict(d)` validates strictly (anything
received over HTTP or Kafka goes through it) and raises `SampleError` with a short `reason`
code that the collector uses as a metric label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import urandom as _urandom
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from probes.errors import BenchwatchError

__all__ = [
    "MAX_FEATURES",
    "MAX_NAME_LEN",
    "MAX_STRING_LEN",
    "MAX_VECTOR_LEN",
    "REASONS",
    "Feature",
    "Sample",
    "SampleError",
    "Sink",
    "check_feature",
    "check_timestamp",
    "is_text",
    "new_sample_id",
    "new_sample_ids",
]

Feature = float | str | tuple[float, ...] | None

MAX_FEATURES = 256  # per sample, outputs and inputs each
MAX_NAME_LEN = 128  # model, version, sample_id, feature names
MAX_STRING_LEN = 256  # categorical feature values
MAX_VECTOR_LEN = 4096  # tuple features (embeddings)
# a sample's timestamp (unix seconds) must lie in [EARLIEST_TIMESTAMP, now + MAX_FUTURE_S]:
# +-1e300 or a clock years ahead is a broken sender, and would skew anything ordered by time
EARLIEST_TIMESTAMP = 0.0  # the Unix epoch
MAX_FUTURE_S = 86_400.0  # a day of clock skew

# Every `SampleError.reason` this module raises; bounded so it is safe as a metric label.
REASONS = (
    "not_a_mapping",
    "missing_field",
    "unknown_field",
    "wrong_type",
    "empty",
    "not_finite",
    "too_large",
    "invalid_text",
    "bad_timestamp",
)

_EMPTY: Mapping[str, Feature] = MappingProxyType({})
_FIELDS = ("model", "version", "sample_id", "timestamp", "outputs", "inputs", "latency_s")
_REQUIRED = ("model", "version", "sample_id", "timestamp", "outputs")
_FIELD_SET = frozenset(_FIELDS)


class SampleError(BenchwatchError, ValueError):
    """A sample failed validation; `reason` is a short code from `REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def new_sample_id() -> str:
    """A globally unique id (the collector de-duplicates retries and redeliveries with it):
    `uuid.uuid4().hex`'s format and randomness (os.urandom), a quarter of its cost, since
    sampled requests pay it on the serving thread."""
    b = bytearray(_urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


def new_sample_ids(n: int) -> list[str]:
    """`n` ids as `new_sample_id` makes them, from one `os.urandom` call (a sampled batch)."""
    if n == 1:
        return [new_sample_id()]
    b = bytearray(_urandom(16 * n))
    for i in range(6, 16 * n, 16):
        b[i] = (b[i] & 0x0F) | 0x40
        b[i + 2] = (b[i + 2] & 0x3F) | 0x80
    h = b.hex()
    return [h[i : i + 32] for i in range(0, 32 * n, 32)]


@dataclass(frozen=True)
class Sample:
    """What one request looked like: output (and optional input) features, for drift checks."""

    model: str
    version: str
    sample_id: str
    timestamp: float
    outputs: Mapping[str, Feature]
    inputs: Mapping[str, Feature] = field(default_factory=lambda: _EMPTY)
    latency_s: float | None = None

    @classmethod
    def new(
        cls,
        model: str,
        version: str,
        outputs: Mapping[str, Feature],
        inputs: Mapping[str, Feature] | None = None,
        latency_s: float | None = None,
        timestamp: float | None = None,
    ) -> Sample:
        """A sample with a fresh id and the current wall-clock time."""
        return cls(
            model=model,
            version=version,
            sample_id=new_sample_id(),
            timestamp=time.time() if timestamp is None else timestamp,
            outputs=dict(outputs),
            inputs=dict(inputs) if inputs else _EMPTY,
            latency_s=latency_s,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: tuples become lists; `inputs`/`latency_s` are omitted when empty."""
        d: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "sample_id": self.sample_id,
            "timestamp": self.timestamp,
            "outputs": {k: _feature_to_json(v) for k, v in self.outputs.items()},
        }
        if self.inputs:
            d["inputs"] = {k: _feature_to_json(v) for k, v in self.inputs.items()}
        if self.latency_s is not None:
            d["latency_s"] = self.latency_s
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Sample:
        """Validate a received dict (never trusts it) and build a `Sample`, or raise `SampleError`."""
        # exact-type checks first: isinstance against an ABC (Mapping) costs ~10x more
        if type(d) is not dict and not isinstance(d, Mapping):
            raise SampleError("not_a_mapping", f"a sample must be a JSON object, got {type(d).__name__}")
        if not (type(d) is dict and d.keys() <= _FIELD_SET):
            for key in d:
                if key not in _FIELDS:
                    raise SampleError(
                        "unknown_field", f"unknown field {str(key)[:40]!r}; allowed: {', '.join(_FIELDS)}"
                    )
        for key in _REQUIRED:
            if key not in d:
                raise SampleError("missing_field", f"field {key!r} is required")
        latency = d.get("latency_s")
        return cls(
            model=_name(d["model"], "model"),
            version=_name(d["version"], "version"),
            sample_id=_name(d["sample_id"], "sample_id"),
            timestamp=check_timestamp(_number(d["timestamp"], "timestamp")),
            outputs=_features(d["outputs"], "outputs"),
            inputs=_features(d["inputs"], "inputs") if d.get("inputs") is not None else _EMPTY,
            latency_s=None if latency is None else _non_negative(_number(latency, "latency_s"), "latency_s"),
        )


@runtime_checkable
class Sink(Protocol):
    """Where sampled summaries go. `send` runs on the queue's drain thread, never on a request;
    it may raise (the queue counts and logs it once)."""

    def send(self, samples: Sequence[Sample]) -> None: ...

    def close(self) -> None: ...


def _feature_to_json(v: Feature) -> Any:
    return list(v) if isinstance(v, tuple) else v


def is_text(v: str) -> bool:
    """True when `v` encodes as UTF-8: no lone surrogate (U+D800-U+DFFF), which a JSON
    escape can carry and which SQLite, Kafka and Prometheus cannot store. isascii() is
    a flag read, so the common case costs nothing."""
    if v.isascii():
        return True
    try:
        v.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(v: str, what: str) -> str:
    if not is_text(v):
        raise SampleError("invalid_text", f"{what} is not valid Unicode text (a lone surrogate); "
                          "send UTF-8 text")
    return v


def _name(v: Any, what: str) -> str:
    if type(v) is str and 0 < len(v) <= MAX_NAME_LEN:  # the common case, checked cheaply
        return _text(v, what)
    if not isinstance(v, str):
        raise SampleError("wrong_type", f"{what} must be a string, got {type(v).__name__}")
    if not v:
        raise SampleError("empty", f"{what} must not be empty")
    if len(v) > MAX_NAME_LEN:
        raise SampleError("too_large", f"{what} is {len(v)} characters; at most {MAX_NAME_LEN}")
    return _text(v, what)


def _number(v: Any, what: str) -> float:
    if type(v) is float and v - v == 0.0:  # finite float, the common case (inf - inf is nan)
        return v
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SampleError("wrong_type", f"{what} must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise SampleError("not_finite", f"{what} must be finite, got {f}")
    return f


def check_timestamp(ts: float, now: float | None = None) -> float:
    """`ts` when it is in the sane range (see EARLIEST_TIMESTAMP), else SampleError
    `bad_timestamp`."""
    latest = (time.time() if now is None else now) + MAX_FUTURE_S
    if not EARLIEST_TIMESTAMP <= ts <= latest:
        raise SampleError("bad_timestamp", f"timestamp {ts:g} is not unix seconds between "
                          f"{EARLIEST_TIMESTAMP:g} and a day from now ({latest:.0f}): send "
                          "time.time() of when the sample was taken")
    return ts


def _non_negative(v: float, what: str) -> float:
    if v < 0:
        raise SampleError("wrong_type", f"{what} must be >= 0, got {v}")
    return v


def check_feature(v: Any, what: str) -> Feature:
    """A feature value in its stored form (finite float, short str, tuple of finite floats or
    None), or SampleError naming the reason; ints become floats, lists tuples."""
    if v is None:
        return None
    if type(v) is float and v - v == 0.0:
        return v
    if isinstance(v, str):
        if len(v) > MAX_STRING_LEN:
            raise SampleError("too_large", f"{what} is a {len(v)}-character string; at most {MAX_STRING_LEN}")
        return _text(v, what)
    if isinstance(v, list | tuple):
        if len(v) > MAX_VECTOR_LEN:
            raise SampleError("too_large", f"{what} has {len(v)} elements; at most {MAX_VECTOR_LEN}")
        return tuple(_number(x, f"{what}[{i}]") for i, x in enumerate(v))
    return _number(v, what)


def _features(v: Any, what: str) -> Mapping[str, Feature]:
    if type(v) is not dict and not isinstance(v, Mapping):
        raise SampleError("wrong_type", f"{what} must be an object of feature name -> value")
    if len(v) > MAX_FEATURES:
        raise SampleError("too_large", f"{what} has {len(v)} features; at most {MAX_FEATURES}")
    out: dict[str, Feature] = {}
    for k, x in v.items():
        name = _name(k, f"{what} feature name")
        out[name] = check_feature(x, f"{what}.{name}")
    return MappingProxyType(out)
