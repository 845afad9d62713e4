"""Kafka topics benchwatch uses, with their settings, and creating them.

The same settings are in deploy/kafka/topics.json for operators (a test keeps the two equal).
Replication is capped at the number of brokers so one local broker works; `min.insync.replicas`
is capped likewise (with acks=all a write then needs every replica of a small cluster).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.errors import CollectorConfigError

log = logging.getLogger(__name__)

SAMPLES_TOPIC = "benchwatch.samples"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 3
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def renamed(self, name: str) -> TopicSpec:
        return TopicSpec(name, self.partitions, self.replication_factor, self.config)


def default_topics(samples_topic: str = SAMPLES_TOPIC, partitions: int = 12) -> list[TopicSpec]:
    """The samples topic, its dead-letter topic and its compacted window-state topic."""
    return [
        TopicSpec(samples_topic, partitions, 3, MappingProxyType({
            "cleanup.policy": "delete",
            "retention.ms": "86400000",  # a day: enough to replay after an outage
            "retention.bytes": "-1",
            "segment.bytes": "67108864",
            "compression.type": "producer",  # keep the producer's lz4 batches as they are
            "max.message.bytes": "1048576",
            "min.insync.replicas": "2",
            "message.timestamp.type": "CreateTime",
        })),
        TopicSpec(f"{samples_topic}.dead-letter", 1, 3, MappingProxyType({
            "cleanup.policy": "delete",
            "retention.ms": "604800000",  # a week to look at what was rejected
            "min.insync.replicas": "2",
        })),
        TopicSpec(f"{samples_topic}.window-state", partitions, 3, MappingProxyType({
            "cleanup.policy": "compact",  # the latest snapshot per model version is all we need
            "min.compaction.lag.ms": "0",
            "segment.ms": "600000",
            "delete.retention.ms": "86400000",
            "max.message.bytes": "8388608",  # a snapshot holds whole windows
            "min.insync.replicas": "2",
        })),
    ]


def load_specs(path: str | Path) -> list[TopicSpec]:
    """Read a topics.json like deploy/kafka/topics.json; raise CollectorConfigError saying what
    is wrong."""
    try:
        data = json.loads(Path(path).read_text())
        return [TopicSpec(str(t["name"]), int(t["partitions"]), int(t.get("replication_factor", 3)),
                          MappingProxyType({str(k): str(v) for k, v in t.get("config", {}).items()}))
                for t in data["topics"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CollectorConfigError(f"cannot read topic settings from {path}: {e!r}; expected "
                         '{"topics": [{"name": ..., "partitions": N, "config": {...}}]}') from e


def create_topics(bootstrap: str | Sequence[str], specs: Sequence[TopicSpec],
                  timeout_s: float = 30.0) -> dict[str, str]:
    """Create the topics that do not exist yet; returns name -> "created" | "exists".

    Returns once every partition of every named topic has a leader: right after creation the
    controller may not have elected them yet, and a producer or consumer group that starts then
    sees no partitions (sends fail, a group leader assigns nothing). Raises TimeoutError when
    they have none after `timeout_s`."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="benchwatch-admin",
                             request_timeout_ms=int(timeout_s * 1000))
    try:
        brokers = max(1, len(admin.describe_cluster().get("brokers", [])))
        existing = set(admin.list_topics())
        out: dict[str, str] = {}
        new = []
        for spec in specs:
            if spec.name in existing:
                out[spec.name] = "exists"
                continue
            rf = min(spec.replication_factor, brokers)
            config = dict(spec.config)
            if "min.insync.replicas" in config:
                config["min.insync.replicas"] = str(min(int(config["min.insync.replicas"]), rf))
            new.append(NewTopic(spec.name, spec.partitions, rf, topic_configs=config))
            out[spec.name] = "created"
        if new:
            admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            log.info("created topics %s", [t.name for t in new])
        wait_for_leaders(admin, [s.name for s in specs], timeout_s)
        return out
    finally:
        admin.close()


def leaderless(admin: Any, topics: Sequence[str]) -> dict[str, str]:
    """topic -> what it still lacks ("unknown topic", "no partitions", "partitions without a
    leader: [..]") for the named topics not ready to be written to; {} when all are."""
    out: dict[str, str] = {}
    for t in admin.describe_topics(list(topics)):
        if t.get("error_code", 0) != 0:
            out[t["name"]] = f"error code {t['error_code']} (not yet known to the broker?)"
        elif not t.get("partitions"):
            out[t["name"]] = "no partitions"
        else:
            missing = sorted(p["partition_index"] for p in t["partitions"]
                             if p.get("error_code", 0) != 0 or p.get("leader_id", -1) < 0)
            if missing:
                out[t["name"]] = f"partitions without a leader: {missing}"
    return out


def wait_for_leaders(admin: Any, topics: Sequence[str], timeout_s: float = 30.0) -> None:
    """Until every partition of `topics` has a leader (a `KafkaAdminClient`); TimeoutError
    naming what is still missing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            pending = leaderless(admin, topics)
        except Exception as e:  # the broker is busy electing: ask again
            pending = {"*": repr(e)}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics have no leader after {timeout_s:g}s: {pending}; is "
                               "the broker (and its controller) healthy?")
        time.sleep(delay)  # a poll, not a fixed wait: the election takes a few ms to seconds
        delay = min(delay * 2, 0.5)


def describe(bootstrap: str | Sequence[str], group: str, topic: str) -> dict[str, Any]:
    """Committed offsets, log end offsets and lag of `group` on `topic`, per partition."""
    from kafka import KafkaConsumer, TopicPartition

    # a consumer with the group id that never subscribes reads the group's offsets, not joining it
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        end = consumer.end_offsets(tps) if tps else {}
        rows = []
        for tp in tps:
            off = consumer.committed(tp) or 0
            rows.append({"partition": tp.partition, "committed": off, "end": end[tp],
                         "lag": max(0, end[tp] - off)})
        return {"topic": topic, "group": group, "partitions": rows,
                "lag": sum(r["lag"] for r in rows)}
    finally:
        consumer.close(autocommit=False)


def missing_topics(bootstrap: str | Sequence[str], topics: Sequence[str | None],
                   timeout_s: float = 10.0) -> list[str]:
    """The named topics that do not exist; raises ConnectionError when Kafka cannot be reached."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                 request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000))
    except KafkaError as e:
        raise ConnectionError(f"cannot reach Kafka at {bootstrap} ({e}); is the broker running? "
                              "(scripts/kafka.sh start)") from e
    try:
        existing = consumer.topics()
    finally:
        consumer.close(autocommit=False)
    return [t for t in topics if t and t not in existing]
