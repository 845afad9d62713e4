"""Drift workers as a Kafka consumer group: samples topic -> `Collector` -> durable windows.

Guarantees, and how:
- Offsets are committed only after the samples they cover are in the `WindowStore` (its SQLite
  transaction committed): a crash at any point replays, never skips.
- Nothing is counted twice: a redelivered sample is a duplicate by `sample_id` in the store; and
  each (model, version) remembers the next offset it has durably ingested (store meta), so a
  replay after a crash skips that model's records below it.
- Rebalance-safe: with a window-state topic (compacted; `collector.kafka.snapshots`), the owner writes
  one snapshot per changed model before each commit; a worker that is given a partition loads the
  snapshots of its models and skips their records below each snapshot's offset. So when a worker
  dies, the survivor's windows hold every acknowledged sample once. Without a state topic each
  worker keeps its own windows (fine for one worker, or one per partition set).
  Cost: each checkpoint re-sends the whole windows of every model that changed since the last
  one (values read from SQLite, JSON, lz4); with many models raise `commit_interval_s` (a
  failover then replays more, which costs time, not correctness).
- Poison records (not a benchwatch batch, unknown wire version, too large or too deep, bad JSON,
  or anything else that fails to decode: `undecodable`) are skipped, counted per reason
  (`stats().poison`), logged once, and copied to a dead-letter topic when one is set; a record
  whose samples decode but cannot be stored for a reason other than the store itself failing
  (`unstorable`) likewise. No record stops the partition or the consumer thread.
  Samples that decode but fail validation are counted by the `Collector` (`rejected`).
- The group owns every partition whatever the start order (topic created before, during or after
  the workers join): an `OwnershipMonitor` (`collector.kafka.ownership`) asks the group
  coordinator every `ownership_check_s` which partitions the members own; when some stay
  unowned in a Stable group (a leader that assigned without the topic's metadata), the worker
  commits what is durable and rejoins (`stats().rejoins`); a worker whose client disagrees with
  the group about what it owns (kafka-python wedged mid-rebalance) starts a fresh client (also
  counted in `rejoins`). `stats().group_unowned` is the
  figure (exported as `benchwatch_kafka_consumer_group_unowned_partitions`, alerted on).
- The consumer thread outlives its own bugs: an unexpected error closes the Kafka client and
  starts a fresh one after `RESTART_BACKOFF_S` (counted in `stats().restarts`, logged); it
  resumes from the committed offsets, so nothing is skipped.

The rebalance listener only records events: kafka-python runs it on the client's I/O loop, where
blocking work would stall heartbeats. They are applied after `poll` returns, before any record
of a newly assigned partition is processed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from collector.ingest import Collector
from collector.kafka.ownership import OwnershipMonitor
from collector.kafka.snapshots import encode_snapshot, load_snapshot, read_snapshots
from probes.errors import BenchwatchError, require
from probes.sinks.kafka_wire import WireError, decode_batch, record_key

__all__ = ["ConsumerStats", "KafkaIngestor", "run_consumer"]

# collector.kafka imports this module first: without kafka-python, say so at import, not on first use
require("kafka", "kafka", "the Kafka transport")

log = logging.getLogger(__name__)

_NO_OFFSET = "-1:-1"
CHECKPOINT_TIMEOUT_S = 30.0  # snapshots not acknowledged by then: give up, retry next time
RESTART_BACKOFF_S = 2.0  # after an unexpected error in the consumer loop
# how often the client refreshes the topic's metadata even when nothing asks it to (the
# default, 5 minutes, leaves a leader that assigned without metadata that long to notice)
METADATA_MAX_AGE_MS = 10_000
# a failing store (disk full, locked, I/O): retry the same records later; any other error
# while storing a record is that record's fault: dead-letter it and move on
_STORE_FAILURES = (sqlite3.OperationalError, OSError)


@dataclass(frozen=True)
class ConsumerStats:
    records: int = 0  # Kafka records read (each a batch of samples)
    samples: int = 0  # samples decoded from them
    accepted: int = 0
    duplicates: int = 0
    replay_skipped: int = 0  # samples below a model's ingested offset (already counted)
    rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    poison: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    commits: int = 0
    commit_failures: int = 0
    snapshots: int = 0
    snapshot_features_left_out: int = 0  # windows too big for a snapshot record
    restored_models: int = 0
    rebalances: int = 0
    assigned: tuple[int, ...] = ()
    lag: int | None = None  # records between our position and the log end, when known
    restarts: int = 0  # the consumer loop failed unexpectedly and was started afresh
    # partitions of the topic that no member of the group owns, at the last ownership check;
    # None before the first check or while the topic does not exist
    group_unowned: int | None = None
    rejoins: int = 0  # times this worker rejoined because the group left partitions unowned


def _listener() -> Any:
    from kafka import ConsumerRebalanceListener

    class _Listener(ConsumerRebalanceListener):
        """Records assignment changes for the consumer thread (see the module doc)."""

        def __init__(self) -> None:
            self.events: list[tuple[str, set[int]]] = []

        def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
            self.events.append(("revoked", {tp.partition for tp in revoked}))

        def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
            self.events.append(("assigned", {tp.partition for tp in assigned}))

        def on_partitions_lost(self, lost: Sequence[Any]) -> None:
            self.events.append(("revoked", {tp.partition for tp in lost}))

    return _Listener()


class _OutOfSync(BenchwatchError):
    """The group and this client disagree on what this member owns: start a fresh client."""


class _Events:
    """The listener's interface as the consumer thread sees it."""

    events: list[tuple[str, set[int]]]


class KafkaIngestor:
    """One drift worker's consumer. `run(stop_event)` until the event is set; `stats()` any time."""

    def __init__(
        self,
        collector: Collector,
        bootstrap: str | Sequence[str],
        topic: str,
        group: str,
        *,
        state_topic: str | None = None,
        dead_letter_topic: str | None = None,
        commit_interval_s: float = 1.0,
        max_poll_records: int = 50,
        client_id: str = "benchwatch-drift",
        consumer_config: Mapping[str, Any] | None = None,
        ownership_check_s: float = 5.0,
    ) -> None:
        self.collector = collector
        self.store = collector.store
        self.bootstrap = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
        self.topic = topic
        self.group = group
        self.state_topic = state_topic
        self.dead_letter_topic = dead_letter_topic
        self.commit_interval_s = commit_interval_s
        self.max_poll_records = max_poll_records
        self.client_id = client_id
        self.consumer_config = dict(consumer_config or {})
        if not ownership_check_s > 0:  # also refuses NaN
            raise ValueError(f"ownership_check_s must be a positive number of seconds, "
                             f"not {ownership_check_s!r}")
        self.ownership_check_s = ownership_check_s
        self._monitor: OwnershipMonitor | None = None
        self._lock = threading.Lock()
        self._stats = ConsumerStats()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._poison: Counter[str] = Counter()
        self._owned: set[int] = set()
        self._skip: dict[tuple[str, str], int] = {}
        self._touched: dict[tuple[str, str], tuple[int, int]] = {}
        self._pending: dict[int, int] = {}  # partition -> next offset to commit
        # (started, snapshot futures, offsets, touched) of the checkpoint awaiting acks
        self._inflight: tuple[float, list[Any], dict[int, int],
                              dict[tuple[str, str], tuple[int, int]]] | None = None
        self._logged: set[str] = set()
        self._lag: int | None = None
        self._consumer: Any = None
        self._producer: Any = None

    # -- public ---------------------------------------------------------------------------
    def stats(self) -> ConsumerStats:
        with self._lock:
            return self._stats

    def reset(self) -> None:
        """Zero the counts (not the offsets or windows). Call from the consumer thread's owner
        while it runs or not; the next published stats start from zero."""
        self._counts.clear()
        self._rejected.clear()
        self._poison.clear()
        self._publish()

    def run(self, stop_event: threading.Event) -> ConsumerStats:
        """Consume until `stop_event` is set. Never raises: an unexpected error is logged and
        the loop starts afresh (new Kafka client, from the committed offsets)."""
        self._monitor = OwnershipMonitor(self.bootstrap, self.group, self.topic,
                                         self.ownership_check_s,
                                         client_id=f"{self.client_id}-ownership").start()
        try:
            while not stop_event.is_set():
                try:
                    self._run_once(stop_event)
                except _OutOfSync:  # logged by the monitor; no backoff: nothing is failing
                    self._counts["rejoins"] += 1
                    self._start_afresh()
                except Exception:
                    self._counts["restarts"] += 1
                    log.exception("the Kafka consumer loop failed; restarting it in %gs "
                                  "(from the committed offsets)", RESTART_BACKOFF_S)
                    self._start_afresh()
                    self._publish()
                    stop_event.wait(RESTART_BACKOFF_S)
        finally:
            self._monitor.stop()
        return self.stats()

    def _start_afresh(self) -> None:
        """Forget the session's state (as a process restart would); keep the counts."""
        self._owned = set()
        self._skip.clear()
        self._touched.clear()
        self._pending.clear()
        self._inflight = None
        self._lag = None
        self._consumer = self._producer = None

    def _run_once(self, stop_event: threading.Event) -> None:
        from kafka import KafkaConsumer
        from kafka.coordinator.assignors.range import RangePartitionAssignor

        listener = _listener()
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "group_id": self.group,
            "client_id": self.client_id,
            "enable_auto_commit": False,  # we commit only what is durable
            "auto_offset_reset": "earliest",
            "max_poll_records": self.max_poll_records,
            # eager assignment: every rebalance hands us the full set, which the restore
            # logic diffs against what we owned
            "partition_assignment_strategy": (RangePartitionAssignor,),
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 1_000,
            "reconnect_backoff_max_ms": 1000,
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        }
        config.update(self.consumer_config)
        while True:  # the broker may come up after us (compose, k8s): wait for it
            try:
                self._consumer = consumer = KafkaConsumer(**config)
                break
            except Exception as e:
                self._log_once("connect", f"cannot reach Kafka at {','.join(self.bootstrap)} "
                               f"({e!r}); retrying")
                if stop_event.wait(2.0):
                    return
        if self.state_topic or self.dead_letter_topic:
            from kafka import KafkaProducer, codec

            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                max_request_size=8 * 1024 * 1024, client_id=f"{self.client_id}-state",
                compression_type="lz4" if codec.has_lz4() else "gzip", max_block_ms=1000,  # type: ignore[no-untyped-call]  # unannotated in types-kafka-python
                delivery_timeout_ms=int(CHECKPOINT_TIMEOUT_S * 1000), request_timeout_ms=10_000,
                reconnect_backoff_max_ms=1000)
        try:  # know the topic's partitions before joining: a group leader that assigns without
            # them gives every member nothing until the next rebalance (seen after a restart)
            consumer.partitions_for_topic(self.topic)
        except Exception as e:
            self._log_once("metadata", f"reading {self.topic}'s metadata failed ({e!r})")
        consumer.subscribe([self.topic], listener=listener)
        last_commit = last_lag = time.monotonic()
        log.info("consuming %s as group %s from %s", self.topic, self.group, ",".join(self.bootstrap))
        try:
            while not stop_event.is_set():
                try:
                    polled = consumer.poll(timeout_ms=200)
                except Exception as e:  # broker gone etc.: the client reconnects by itself
                    self._log_once("poll", f"polling Kafka failed ({e!r}); retrying")
                    stop_event.wait(0.5)
                    continue
                self._apply_events(listener)
                if self._monitor is not None:
                    member = consumer.group_metadata().member_id  # type: ignore[no-untyped-call]
                    self._monitor.report(member or "", frozenset(self._owned))
                    if self._monitor.take_restart():
                        raise _OutOfSync
                    if self._monitor.take_rejoin():
                        self._rejoin(consumer, listener)
                if polled:
                    self._process(polled)
                self._finish_checkpoint()  # commit as soon as the snapshots are acknowledged
                now = time.monotonic()
                if now - last_commit >= self.commit_interval_s:
                    self._checkpoint()
                    last_commit = now
                if now - last_lag >= 1.0:
                    self._update_lag()
                    last_lag = now
                self._publish()
            self._checkpoint(wait_s=5.0)
            self._finish_checkpoint(wait_s=5.0)
        finally:
            try:
                consumer.close(autocommit=False)
            finally:
                if self._producer is not None:
                    self._producer.close(timeout=5)
            self._publish()

    # -- records ----------------------------------------------------------------------------
    def _process(self, polled: Mapping[Any, Sequence[Any]]) -> None:
        decoded: list[tuple[Any, list[dict[str, Any]]]] = []  # (record, its sample dicts)
        model_next: dict[tuple[str, str], tuple[int, int]] = {}
        first: dict[Any, int] = {}
        next_offsets: dict[int, int] = {}
        for tp, records in polled.items():
            if tp.partition not in self._owned:
                continue
            for rec in records:
                first.setdefault(tp, rec.offset)
                next_offsets[tp.partition] = rec.offset + 1
                self._counts["records"] += 1
                try:
                    model, version, dicts = decode_batch(rec.value)
                except WireError as e:
                    self._poisoned(rec, e.reason, str(e))
                    continue
                except Exception as e:  # whatever else a record can do to a decoder
                    self._poisoned(rec, "undecodable", f"{type(e).__name__}: {str(e)[:200]}")
                    continue
                self._counts["samples"] += len(dicts)
                key = (model, version)
                if rec.offset < self._skip.get(key, -1):
                    self._counts["replay_skipped"] += len(dicts)
                    continue
                decoded.append((rec, dicts))
                model_next[key] = (tp.partition, rec.offset + 1)
        if decoded and not self._ingest(decoded, first):
            return
        for (model, version), (partition, offset) in model_next.items():
            self.store.meta_set(self._meta_key(model, version), f"{partition}:{offset}")
            self._touched[(model, version)] = (partition, offset)
        self._pending.update(next_offsets)

    def _ingest(self, decoded: Sequence[tuple[Any, list[dict[str, Any]]]],
                first: Mapping[Any, int]) -> bool:
        """Store the decoded records' samples; False when the store failed and the records were
        put back (seek) to be read again. A record whose samples make the ingest raise for any
        other reason is dead-lettered (`unstorable`) so that it cannot stall its partition."""
        try:
            self._count(self.collector.ingest([d for _, dicts in decoded for d in dicts]))
            return True
        except _STORE_FAILURES as e:
            return self._retry_later(e, first)
        except Exception:
            pass  # one record's fault, probably: store them one by one to find it
        for rec, dicts in decoded:
            try:
                self._count(self.collector.ingest(dicts))
            except _STORE_FAILURES as e:
                return self._retry_later(e, first)
            except Exception as e:
                self._poisoned(rec, "unstorable", f"{type(e).__name__}: {str(e)[:200]}")
        return True

    def _count(self, report: Any) -> None:
        self._counts["accepted"] += report.accepted
        self._counts["duplicates"] += report.duplicates
        self._rejected.update(report.rejected)

    def _retry_later(self, error: Exception, first: Mapping[Any, int]) -> bool:
        """The store failed (disk full, ...): replay these records later (redelivered samples
        are duplicates by sample_id, so a partly stored poll is not counted twice)."""
        self._log_once("ingest", f"storing samples failed ({error!r}); will retry")
        for tp, offset in first.items():
            self._consumer.seek(tp, offset)
        time.sleep(0.5)
        return False

    def _poisoned(self, rec: Any, reason: str, why: str) -> None:
        self._poison[reason] += 1
        self._log_once(f"poison:{reason}",
                       f"skipping a record at {rec.topic}/{rec.partition}@{rec.offset}: {why}")
        if self._producer is not None and self.dead_letter_topic:
            try:
                self._producer.send(
                    self.dead_letter_topic, key=rec.key, value=rec.value,
                    headers=[("benchwatch-error", reason.encode()),
                             ("benchwatch-source", f"{rec.topic}/{rec.partition}@{rec.offset}".encode())])
            except Exception as e:
                self._log_once("dead-letter", f"cannot write to {self.dead_letter_topic}: {e!r}")

    # -- checkpoints and commits -------------------------------------------------------------
    # Two phases so that the consumer thread never waits on Kafka while it is down (it would
    # stop polling, and catch up late): `_start_checkpoint` sends the snapshots and moves the
    # pending offsets to `_inflight`; `_finish_checkpoint` commits them once every snapshot is
    # acknowledged, or hands them back to the next checkpoint when one failed.
    def _checkpoint(self, wait_s: float = 0.0) -> None:
        self._finish_checkpoint(wait_s)
        if self._inflight is None and (self._pending or self._touched):
            self._start_checkpoint()
            self._finish_checkpoint(wait_s)

    def _start_checkpoint(self) -> None:
        touched = {k: v for k, v in self._touched.items() if v[0] in self._owned}
        offsets = {p: o for p, o in self._pending.items() if p in self._owned}
        futures = []
        if self._producer is not None and self.state_topic:
            try:
                for (model, version), (partition, offset) in touched.items():
                    value, left_out = encode_snapshot(self.store, model, version, partition, offset)
                    if left_out:
                        self._counts["snapshot_features_left_out"] += len(left_out)
                        self._log_once(f"left-out:{model}/{version}",
                                       f"windows {left_out} of {model} {version} are too big for "
                                       "a snapshot record; they start empty after a failover")
                    futures.append(self._producer.send(
                        self.state_topic, key=record_key(model, version), value=value))
            except Exception as e:  # Kafka unreachable: keep everything for the next try
                self._log_once("snapshot", f"writing window snapshots failed ({e!r}); not committing")
                self._counts["commit_failures"] += 1
                return
        self._pending.clear()
        self._touched.clear()
        self._inflight = (time.monotonic(), futures, offsets, touched)

    def _finish_checkpoint(self, wait_s: float = 0.0) -> None:
        if self._inflight is None:
            return
        from kafka.structs import OffsetAndMetadata, TopicPartition

        started, futures, offsets, touched = self._inflight
        if wait_s > 0 and self._producer is not None:
            try:
                self._producer.flush(timeout=wait_s)
            except Exception:
                pass
        if not all(f.is_done for f in futures):
            if time.monotonic() - started < CHECKPOINT_TIMEOUT_S:
                return  # still waiting for the snapshots to be acknowledged
            failed: Exception | None = TimeoutError("snapshots not acknowledged in time")
        else:
            failed = next((f.exception for f in futures if f.failed()), None)
        self._inflight = None
        if failed is None:
            commit = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                      for p, o in offsets.items() if p in self._owned}
            try:
                if commit:
                    self._consumer.commit(commit, timeout_ms=5000)
                    self._counts["commits"] += 1
                self._counts["snapshots"] += len(futures)
                return
            except Exception as e:  # a rebalance in between, or Kafka gone: replay is safe
                failed = e
        if "TooLarge" in type(failed).__name__:
            self._log_once("too-large", f"the broker refused a window snapshot as too large "
                           f"({failed!r}): set max.message.bytes=8388608 on {self.state_topic} "
                           "(deploy/kafka/topics.json; `benchwatch kafka topics` does)")
        self._log_once("commit", f"a checkpoint failed ({failed!r}); retrying with the next one")
        self._counts["commit_failures"] += 1
        for p, o in offsets.items():  # hand back what is still ours and not superseded
            if p in self._owned and p not in self._pending:
                self._pending[p] = o
        for key, value in touched.items():
            if value[0] in self._owned and key not in self._touched:
                self._touched[key] = value

    # -- rebalances -------------------------------------------------------------------------
    def _apply_events(self, listener: _Events) -> None:
        while listener.events:
            kind, parts = listener.events.pop(0)
            if kind != "assigned":
                continue
            self._counts["rebalances"] += 1
            new, gone = parts - self._owned, self._owned - parts
            self._owned = set(parts)
            for p in gone:
                self._pending.pop(p, None)
            self._touched = {k: v for k, v in self._touched.items() if v[0] in parts}
            if gone and self.state_topic:
                self._forget(gone)
            if new:
                self._restore(new)
            log.info("owning partitions %s of %s (new %s, gone %s)", sorted(parts), self.topic,
                     sorted(new), sorted(gone))

    def _rejoin(self, consumer: Any, listener: _Events) -> None:
        """Leave the group and join again, so that its leader assigns anew (with the topic's
        metadata this time). What is durable is committed first; the rest is replayed."""
        self._counts["rejoins"] += 1
        self._checkpoint(wait_s=5.0)
        self._finish_checkpoint(wait_s=5.0)
        consumer.unsubscribe()
        listener.events.append(("assigned", set()))  # nothing is ours until the group says so
        self._apply_events(listener)
        try:  # make sure this member, should it lead, knows the partitions
            consumer.partitions_for_topic(self.topic)
        except Exception as e:
            self._log_once("metadata", f"reading {self.topic}'s metadata failed ({e!r})")
        consumer.subscribe([self.topic], listener=listener)

    def _local_offsets(self) -> dict[tuple[str, str], tuple[int, int]]:
        out = {}
        for model, version in {(m, v) for m, v, _ in self.store.keys()}:
            raw = self.store.meta_get(self._meta_key(model, version))
            if raw and raw != _NO_OFFSET:
                p, _, o = raw.partition(":")
                out[(model, version)] = (int(p), int(o))
        return out

    def _forget(self, gone: set[int]) -> None:
        """Drop windows of models whose partitions moved away (their new owner has them)."""
        for (model, version), (p, _) in self._local_offsets().items():
            if p in gone:
                self.store.reset(model, version)
                self.store.meta_set(self._meta_key(model, version), _NO_OFFSET)
                self._skip.pop((model, version), None)

    def _restore(self, new: set[int]) -> None:
        local = {k: v for k, v in self._local_offsets().items() if v[0] in new}
        snaps = {}
        if self.state_topic:
            try:
                snaps = read_snapshots(self.bootstrap, self.state_topic, new)
            except Exception as e:
                self._log_once("restore", f"reading window snapshots failed ({e!r})")
        restored = 0
        for key in set(local) | set(snaps):
            snap = snaps.get(key)
            local_offset = local[key][1] if key in local else None
            if snap is not None and (local_offset is None or snap.next_offset > local_offset):
                load_snapshot(self.store, snap)
                self.store.meta_set(self._meta_key(*key), f"{snap.partition}:{snap.next_offset}")
                self._skip[key] = snap.next_offset
                restored += 1
            elif local_offset is not None:
                self._skip[key] = local_offset
        self._counts["restored_models"] += restored
        if restored:
            log.info("restored the windows of %d model version(s) from %s", restored, self.state_topic)

    # -- bookkeeping ------------------------------------------------------------------------
    def _meta_key(self, model: str, version: str) -> str:
        return f"kafka:{self.topic}:{model}/{version}"

    def _update_lag(self) -> None:
        """Records between our position and the log end, from the high watermarks the fetches
        bring back (no request of its own, so it never waits on a broker that is down)."""
        from kafka.structs import TopicPartition

        try:
            lag = 0
            for p in self._owned:
                tp = TopicPartition(self.topic, p)
                high = self._consumer.highwater(tp)
                if high is None:
                    self._lag = None
                    return
                lag += max(0, high - self._consumer.position(tp, timeout_ms=0))
            self._lag = lag
        except Exception:
            self._lag = None

    def _publish(self) -> None:
        c = self._counts
        stats = ConsumerStats(
            records=c["records"], samples=c["samples"], accepted=c["accepted"],
            duplicates=c["duplicates"], replay_skipped=c["replay_skipped"],
            rejected=MappingProxyType(dict(self._rejected)),
            poison=MappingProxyType(dict(self._poison)), commits=c["commits"],
            commit_failures=c["commit_failures"], snapshots=c["snapshots"],
            snapshot_features_left_out=c["snapshot_features_left_out"],
            restored_models=c["restored_models"], rebalances=c["rebalances"],
            assigned=tuple(sorted(self._owned)), lag=self._lag, restarts=c["restarts"],
            group_unowned=self._group_unowned(), rejoins=c["rejoins"])
        with self._lock:
            self._stats = stats

    def _group_unowned(self) -> int | None:
        look = self._monitor.latest if self._monitor is not None else None
        return None if look is None else len(look.unowned)

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s (logged once; see KafkaIngestor.stats())", message)


def run_consumer(collector: Collector, bootstrap: str | Sequence[str], topic: str, group: str,
                 stop_event: threading.Event, **options: Any) -> ConsumerStats:
    """Consume `topic` as a member of `group` into `collector` until `stop_event` is set.

    For the drift service: run it in a thread; `options` go to `KafkaIngestor` (state_topic,
    dead_letter_topic, commit_interval_s, ...).
    """
    return KafkaIngestor(collector, bootstrap, topic, group, **options).run(stop_event)
