"""`KafkaSink`: the probe-side producer of sample batches (`kafka://host:port[,host:port]/topic`).

`send` only appends to a bounded local buffer (a deque; O(1), no I/O, no lock held across
calls) and returns; a daemon thread of the sink groups the buffered samples by (model, version),
encodes them with `probes.sinks.kafka_wire` and hands them to kafka-python's producer (lz4 batch
compression, acks=all, idempotent retries, keyed by model/version). So neither the serving thread
nor the probe queue's drain thread ever waits for Kafka.

When Kafka is down the producer keeps what it already accepted (up to `delivery_timeout_s`),
the buffer fills, and then new samples are dropped and counted (`stats().dropped`), never
blocking and never raising into the caller. Delivery outcomes are counted per sample:
`acked` (the broker confirmed with acks=all) and `failed` (gave up after the delivery timeout).
`dropped_counts()` hands the losses to the probe's sample queue, which exports them in
`benchwatch.probe.dropped` as `reason="sink_buffer_full"` and `reason="sink_failed"`.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from probes.errors import ConfigError, require
from probes.samples import Sample
from probes.sinks.kafka_wire import encode_batch, record_key

__all__ = ["MAX_RECORD_BYTES", "KafkaSink", "KafkaSinkStats", "parse_kafka_url"]

# under the samples topic's max.message.bytes (1 MiB, deploy/kafka/topics.json) with room for
# the batch header; measured before compression, so it is conservative
MAX_RECORD_BYTES = 900_000

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[Sequence[Sample], "BaseException | None"], None]


@dataclass(frozen=True)
class KafkaSinkStats:
    """Counts in samples since the sink started."""

    received: int  # handed to send()
    dropped: int  # buffer full: never sent
    buffered: int  # waiting in the local buffer now
    in_flight: int  # handed to the producer, not yet acknowledged or failed
    acked: int  # acknowledged by the broker (acks=all)
    failed: int  # the producer gave up on them (delivery timeout or a fatal error)
    records: int  # Kafka records produced (one per batch per model version)
    connected: bool


def parse_kafka_url(url: str) -> tuple[list[str], str]:
    """`kafka://h1:9092,h2:9092/topic` -> (["h1:9092", "h2:9092"], "topic")."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "kafka":
        raise ConfigError(f"not a kafka:// URL: {url!r}; write kafka://host:port/topic")
    servers = [s.strip() for s in parts.netloc.split(",") if s.strip()]
    topic = parts.path.lstrip("/")
    if not servers or not topic or "/" in topic:
        raise ConfigError(
            f"cannot read {url!r}: write kafka://host:port/topic "
            "(several brokers as kafka://h1:9092,h2:9092/topic)"
        )
    for s in servers:
        host, _, port = s.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"broker {s!r} in {url!r} needs host:port, e.g. 127.0.0.1:9092")
    return servers, topic


class KafkaSink:
    """A `probes.Sink` that produces sample batches to a Kafka topic (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        buffer_size: int = 100_000,
        samples_per_record: int = 500,
        linger_ms: int = 50,
        compression: str | None = "auto",
        delivery_timeout_s: float = 120.0,
        client_id: str = "benchwatch-probe",
        on_delivery: DeliveryCallback | None = None,
        producer_config: dict[str, Any] | None = None,
    ) -> None:
        self.servers, self.topic = parse_kafka_url(url)
        if buffer_size < 1 or samples_per_record < 1:
            raise ConfigError("buffer_size and samples_per_record must be >= 1")
        require("kafka", "kafka", "the Kafka sink")  # fail at start-up, not on the first batch
        from kafka import codec

        if compression == "auto":
            compression = "lz4" if codec.has_lz4() else "gzip"  # type: ignore[no-untyped-call]  # unannotated in types-kafka-python
        self.buffer_size = buffer_size
        self.samples_per_record = samples_per_record
        self._on_delivery = on_delivery
        self._config: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,  # retries cannot duplicate or reorder a partition
            "compression_type": compression,
            "linger_ms": 5,  # records are already batched by us (see _run)
            "batch_size": 512 * 1024,
            "max_request_size": 1024 * 1024,
            "delivery_timeout_ms": int(delivery_timeout_s * 1000),
            "request_timeout_ms": 10_000,
            "max_block_ms": 1000,  # our own thread waits at most this; then we re-buffer
            "reconnect_backoff_max_ms": 1000,
            "bootstrap_timeout_ms": 5000,  # a broker that is down: retry from our loop
            "retry_backoff_ms": 100,
        }
        self._config.update(producer_config or {})
        self._buf: deque[Sample] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._hurry = threading.Event()  # flush/close: stop waiting for fuller batches
        self._linger_s = linger_ms / 1000
        # each counter has one writer thread: send()'s caller or the sending thread
        self._received = self._dropped = self._requeue_dropped = 0
        self._acked = self._failed = self._records = self._in_flight = 0
        self._count_lock = threading.Lock()  # producer I/O thread callbacks vs flush()
        self._producer: Any = None
        self._close_left_to_thread = False
        self._logged: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="benchwatch-kafka-sink", daemon=True)
        self._thread.start()

    # -- the Sink protocol ------------------------------------------------------------------
    def send(self, samples: Sequence[Sample]) -> None:
        """Buffer samples for the sending thread; drops (and counts) what does not fit."""
        n = len(samples)
        self._received += n
        room = self.buffer_size - len(self._buf)
        if room < n:
            self._dropped += n - max(room, 0)
            self._log_once("dropped", "the Kafka buffer is full (is Kafka down?); dropping samples")
            samples = samples[: max(room, 0)]
        if samples:
            self._buf.extend(samples)
            self._idle.clear()
            self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is buffered (up to `timeout_s`), then stop the thread and the producer."""
        self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        self._hurry.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            self._close_left_to_thread = True
        else:
            self._close_producer(timeout_s)

    def _close_producer(self, timeout_s: float) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=timeout_s)
            except Exception:  # closing must not raise into shutdown paths
                log.debug("closing the Kafka producer failed", exc_info=True)

    # -- extras -----------------------------------------------------------------------------
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the buffer is handed over and the producer has no pending batch."""
        deadline = time.monotonic() + timeout_s
        self._hurry.set()
        self._wake.set()
        try:
            while not (self._idle.is_set() and not self._buf):
                if time.monotonic() > deadline or not self._thread.is_alive():
                    return False
                self._idle.wait(0.02)
        finally:
            self._hurry.clear()
        producer = self._producer
        if producer is not None:
            try:
                producer.flush(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                return False
        with self._count_lock:
            return self._in_flight == 0

    def stats(self) -> KafkaSinkStats:
        with self._count_lock:
            return KafkaSinkStats(
                received=self._received,
                dropped=self._dropped + self._requeue_dropped,
                buffered=len(self._buf),
                in_flight=self._in_flight,
                acked=self._acked,
                failed=self._failed,
                records=self._records,
                connected=self._producer is not None,
            )

    def dropped_counts(self) -> dict[str, int]:
        """Samples lost after `send` returned, by reason (the probe's `benchwatch.probe.dropped`
        reasons): `sink_buffer_full` (local buffer full), `sink_failed` (Kafka never acked)."""
        st = self.stats()
        return {"sink_buffer_full": st.dropped, "sink_failed": st.failed}

    # -- the sending thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._buf:
                self._idle.set()
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._idle.clear()  # set again only once the sender sees an empty buffer
            if len(self._buf) < self.samples_per_record and self._linger_s > 0:
                # fewer, fuller records: kafka-python's cost is per record, not per sample
                self._hurry.wait(self._linger_s)
            if self._producer is None and not self._connect():
                self._stop.wait(1.0)
                continue
            try:
                self._drain_once()
            except Exception as e:  # keep the thread alive whatever the client does
                self._log_once("drain", f"unexpected error producing to Kafka: {e!r}")
                self._stop.wait(0.5)
        if self._close_left_to_thread:
            self._close_producer(1.0)  # close() gave up waiting for us (stuck connecting)

    def _connect(self) -> bool:
        from kafka import KafkaProducer

        try:
            self._producer = KafkaProducer(**self._config)
        except Exception as e:
            self._log_once("connect", f"cannot reach Kafka at {','.join(self.servers)} ({e}); retrying")
            return False
        log.info("producing samples to Kafka topic %s at %s", self.topic, ",".join(self.servers))
        return True

    def _drain_once(self) -> None:
        from kafka.errors import KafkaTimeoutError

        take = min(len(self._buf), 20 * self.samples_per_record)
        popleft = self._buf.popleft
        groups: dict[tuple[str, str], list[Sample]] = {}
        for _ in range(take):
            s = popleft()
            groups.setdefault((s.model, s.version), []).append(s)
        pending = [
            (mv, batch[i : i + self.samples_per_record])
            for mv, batch in groups.items()
            for i in range(0, len(batch), self.samples_per_record)
        ]
        pending.reverse()  # a stack: pop() takes the oldest chunk
        while pending:
            (model, version), chunk = pending.pop()
            value = encode_batch(model, version, chunk)
            if len(value) > MAX_RECORD_BYTES:
                if len(chunk) > 1:  # big inputs (embeddings): split until a record fits
                    half = len(chunk) // 2
                    pending += [((model, version), chunk[half:]), ((model, version), chunk[:half])]
                else:
                    self._give_up(chunk, ValueError(
                        f"one sample encodes to {len(value)} bytes, over {MAX_RECORD_BYTES}"))
                continue
            try:
                future = self._producer.send(self.topic, key=record_key(model, version), value=value)
            except KafkaTimeoutError:
                # The producer's own buffer is full or the topic's metadata is unknown: Kafka is
                # unreachable. Put everything not handed over back in front, in order, and wait.
                rest = chunk + [s for _, c in reversed(pending) for s in c]
                self._buf.extendleft(reversed(rest))
                excess = len(self._buf) - self.buffer_size
                for _ in range(max(0, excess)):  # keep the bound: drop the newest
                    self._buf.pop()
                    self._requeue_dropped += 1
                self._log_once("blocked", "Kafka is not accepting records; buffering locally")
                self._stop.wait(0.2)
                return
            except Exception as e:  # a record the client refuses: count it, keep going
                self._give_up(chunk, e)
                continue
            with self._count_lock:
                self._in_flight += len(chunk)
                self._records += 1
            future.add_callback(self._delivered, chunk)
            future.add_errback(self._undelivered, chunk)

    def _give_up(self, chunk: list[Sample], error: BaseException) -> None:
        with self._count_lock:
            self._in_flight += len(chunk)  # _undelivered takes them off again
        self._undelivered(chunk, error)

    def _delivered(self, chunk: list[Sample], _metadata: Any) -> None:
        with self._count_lock:
            self._in_flight -= len(chunk)
            self._acked += len(chunk)
        self._notify(chunk, None)

    def _undelivered(self, chunk: list[Sample], error: BaseException) -> None:
        with self._count_lock:
            self._in_flight -= len(chunk)
            self._failed += len(chunk)
        self._log_once("failed", f"Kafka did not acknowledge a batch ({error!r}); counted as failed")
        self._notify(chunk, error)

    def _notify(self, chunk: list[Sample], error: BaseException | None) -> None:
        if self._on_delivery is not None:
            try:
                self._on_delivery(chunk, error)
            except Exception:
                self._log_once("callback", "the on_delivery callback raised")

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s (logged once; see KafkaSink.stats())", message)
