"""The Kafka wire format for sample batches: a 3-byte versioned header, then compact JSON.

One Kafka record carries a batch of samples of one (model, version) - the record key - so that
the per-record cost (headers, offsets, consumer bookkeeping) is paid once per batch, not per
sample, and one model's samples stay ordered in one partition.

    value = b"BW" + bytes([WIRE_VERSION]) + UTF-8 JSON
    JSON (version 1) = {"m": model, "v": version,
                        "s": [[sample_id, timestamp, latency_s | null, outputs, inputs | null], ...]}

Why JSON and not msgpack/Avro/protobuf: the standard library has it on both sides (a serving
process needs no extra dependency), nothing in it can execute code (no pickle), anyone can read a
record with `kafka-console-consumer`, and the producer's batch compression (lz4) removes most of
JSON's size overhead. The per-sample field names are replaced by positions to keep it compact.
The magic bytes and version come first so that a reader rejects foreign or newer records before
parsing them, with a message saying which version it read and which it understands.

Reading is bounded, because a record is input from anyone who can write to the topic: at most
`MAX_DECODE_BYTES` per record and `MAX_DECODE_SAMPLES` samples per record (the sink writes at
most 900 000 bytes and 500 samples), and JSON nesting as deep as the interpreter's recursion
limit (a legal batch is 5 levels deep; deeper is `too_deep`, not a `RecursionError`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from probes.errors import BenchwatchError
from probes.samples import Sample

__all__ = [
    "MAGIC",
    "WIRE_VERSION",
    "SUPPORTED_VERSIONS",
    "MAX_DECODE_BYTES",
    "MAX_DECODE_SAMPLES",
    "WireError",
    "decode_batch",
    "encode_batch",
    "record_key",
]

MAGIC = b"BW"
WIRE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
_HEADER = MAGIC + bytes([WIRE_VERSION])
# what a reader accepts: well above what `KafkaSink` writes (900 000 bytes, 500 samples per
# record) and the samples topic's max.message.bytes (1 MiB), so only forged records hit them
MAX_DECODE_BYTES = 8 * 1024 * 1024
MAX_DECODE_SAMPLES = 20_000
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class WireError(BenchwatchError, ValueError):
    """A record is not a readable benchwatch batch; `reason` is a short metric-label code:
    `not_benchwatch`, `unknown_version`, `too_large`, `too_deep`, `bad_json`, `bad_envelope`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def record_key(model: str, version: str) -> bytes:
    """The partitioning key: all of one model version's samples go to one partition, in order."""
    return f"{model}/{version}".encode()


def encode_batch(model: str, version: str, samples: Sequence[Sample]) -> bytes:
    """Encode samples that all belong to (model, version) as one record value."""
    rows = [
        [s.sample_id, s.timestamp, s.latency_s, dict(s.outputs), dict(s.inputs) if s.inputs else None]
        for s in samples
    ]
    return _HEADER + _dumps({"m": model, "v": version, "s": rows}).encode()


def decode_batch(value: bytes | None) -> tuple[str, str, list[dict[str, Any]]]:
    """Decode a record value into (model, version, sample dicts in `Sample.to_dict` form).

    Only the envelope is checked here; each sample dict is validated by whoever ingests it
    (`Sample.from_dict`), so one bad sample does not cost its whole batch.
    """
    if not value or len(value) < 3 or value[:2] != MAGIC:
        raise WireError("not_benchwatch", "the record does not start with the benchwatch magic b'BW'")
    version = value[2]
    if version not in SUPPORTED_VERSIONS:
        raise WireError(
            "unknown_version",
            f"wire format version {version}; this reader understands {sorted(SUPPORTED_VERSIONS)}: "
            "upgrade the consumers before the producers",
        )
    if len(value) > MAX_DECODE_BYTES:
        raise WireError("too_large", f"the record is {len(value)} bytes; a reader takes at most "
                                     f"{MAX_DECODE_BYTES}")
    try:
        payload = json.loads(value[3:])
    except RecursionError:  # the C decoder checks the recursion limit: a clean error, no crash
        raise WireError("too_deep", "the batch nests JSON deeper than the interpreter's "
                                    "recursion limit (a batch is 5 levels deep)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise WireError("bad_json", f"the batch is not valid UTF-8 JSON ({str(e)[:200]})") from None
    if not isinstance(payload, dict):
        raise WireError("bad_envelope", "the batch must be a JSON object")
    model, ver, rows = payload.get("m"), payload.get("v"), payload.get("s")
    if not isinstance(model, str) or not isinstance(ver, str) or not isinstance(rows, list):
        raise WireError("bad_envelope", "the batch needs string 'm' and 'v' and a list 's'")
    if len(rows) > MAX_DECODE_SAMPLES:
        raise WireError("too_large", f"the batch holds {len(rows)} samples; a reader takes at "
                                     f"most {MAX_DECODE_SAMPLES} per record")
    out: list[dict[str, Any]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 5:
            # keep the position so the ingest counts it as one rejected sample
            out.append({"model": model, "version": ver, "_bad_row": True})
            continue
        sample_id, ts, latency, outputs, inputs = row
        d: dict[str, Any] = {
            "model": model,
            "version": ver,
            "sample_id": sample_id,
            "timestamp": ts,
            "outputs": outputs,
        }
        if inputs is not None:
            d["inputs"] = inputs
        if latency is not None:
            d["latency_s"] = latency
        out.append(d)
    return model, ver, out
