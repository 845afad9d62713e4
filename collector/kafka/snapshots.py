"""Window checkpoints for the Kafka consumer group: snapshots in a compacted topic.

Each drift worker keeps its windows in its own durable `WindowStore`. So that another worker can
take over a partition (rebalance, a worker killed) with the windows intact and nothing counted
twice, the owner writes, before it commits its consumer offsets, one snapshot per (model,
version) it changed to a compacted topic keyed by model/version:

    value = b"BWS" + bytes([STATE_VERSION]) + JSON
    {"m": model, "v": version, "p": partition, "o": next_offset, "t": unix time,
     "w": {feature: [values, oldest first]}}

`o` is the offset of the samples topic up to which (exclusive) that model's samples are in the
snapshot. A new owner loads the snapshot and then ignores that model's records below `o` when it
replays from the committed offset (which is <= `o`), so every sample lands exactly once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.windows import Feature, WindowStore
from probes.sinks.kafka_wire import WireError

log = logging.getLogger(__name__)

STATE_MAGIC = b"BWS"
STATE_VERSION = 1


@dataclass(frozen=True)
class WindowSnapshot:
    """One model's windows as saved on the state topic, with the offset they cover up to."""

    model: str
    version: str
    partition: int
    next_offset: int
    windows: Mapping[str, list[Feature]]
    written_at: float


MAX_SNAPSHOT_BYTES = 7_500_000  # under the state topic's max.message.bytes (8 MiB)


def encode_snapshot(store: WindowStore, model: str, version: str, partition: int,
                    next_offset: int, max_bytes: int = MAX_SNAPSHOT_BYTES) -> tuple[bytes, list[str]]:
    """The snapshot record value, and the features left out because the whole would not fit in
    one record (largest first; e.g. embedding windows): their windows start empty on failover."""
    parts = {}
    for f in store.features(model, version):
        vals = [list(x) if isinstance(x, tuple) else x for x in store.values(model, version, f)]
        parts[f] = json.dumps(vals, separators=(",", ":"))
    left_out: list[str] = []
    while parts and sum(len(v) + len(k) + 4 for k, v in parts.items()) > max_bytes - 512:
        biggest = max(parts, key=lambda k: len(parts[k]))
        left_out.append(biggest)
        del parts[biggest]
    head = json.dumps({"m": model, "v": version, "p": partition, "o": next_offset,
                       "t": time.time()}, separators=(",", ":"))
    windows = ",".join(f"{json.dumps(k)}:{v}" for k, v in parts.items())
    body = f'{head[:-1]},"w":{{{windows}}}}}'
    return STATE_MAGIC + bytes([STATE_VERSION]) + body.encode(), left_out


def decode_snapshot(value: bytes | None) -> WindowSnapshot:
    if not value or value[:3] != STATE_MAGIC or len(value) < 4:
        raise WireError("not_benchwatch", "not a benchwatch window snapshot (magic b'BWS')")
    if value[3] != STATE_VERSION:
        raise WireError("unknown_version",
                        f"snapshot version {value[3]}; this reader understands {STATE_VERSION}")
    try:
        d = json.loads(value[4:])
        windows = {str(f): [tuple(x) if isinstance(x, list) else x for x in vals]
                   for f, vals in d["w"].items()}
        return WindowSnapshot(str(d["m"]), str(d["v"]), int(d["p"]), int(d["o"]), windows,
                        float(d["t"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WireError("bad_envelope", f"unreadable window snapshot ({e!r})") from None


def load_snapshot(store: WindowStore, snap: WindowSnapshot) -> None:
    """Replace the store's windows of snap's model version by the snapshot's values.

    The store takes whole samples, so the values are re-assembled into synthetic samples aligned
    on the newest value (window i of every feature goes into sample i); their ids are fresh.
    """
    store.reset(snap.model, snap.version)
    longest = max((len(v) for v in snap.windows.values()), default=0)
    items: list[tuple[str, str, str, float, Mapping[str, Feature], Mapping[str, Feature]]] = []
    for i in range(longest):
        feats: dict[str, Feature] = {}
        for name, vals in snap.windows.items():
            j = i - (longest - len(vals))
            if j >= 0:
                feats[name] = vals[j]
        items.append((f"restored-{uuid.uuid4().hex}", snap.model, snap.version, snap.written_at,
                      {}, feats))
    for start in range(0, len(items), 2000):
        store.add(items[start:start + 2000])


def read_snapshots(bootstrap: Sequence[str] | str, topic: str, partitions: set[int],
                   timeout_s: float = 10.0,
                   consumer_config: Mapping[str, Any] | None = None) -> dict[tuple[str, str], WindowSnapshot]:
    """The latest snapshot of every model whose samples partition is in `partitions`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             **dict(consumer_config or {}))
    found: dict[tuple[str, str], WindowSnapshot] = {}
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            log.warning("the window-state topic %s does not exist: no windows restored "
                        "(create it with `benchwatch kafka topics`)", topic)
            return found
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        # position() is None only while the partition has no position yet: not at the end
        while any((consumer.position(tp) or 0) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading window snapshots from {topic} took over {timeout_s}s")
            for records in consumer.poll(timeout_ms=200).values():
                for rec in records:
                    if rec.value is None:  # a tombstone
                        continue
                    try:
                        snap = decode_snapshot(rec.value)
                    except WireError as e:
                        log.warning("skipping an unreadable snapshot at %s/%d@%d: %s",
                                    topic, rec.partition, rec.offset, e)
                        continue
                    if snap.partition in partitions:
                        key = (snap.model, snap.version)
                        old = found.get(key)
                        if old is None or snap.next_offset >= old.next_offset:
                            found[key] = snap
    finally:
        consumer.close()
    return found
