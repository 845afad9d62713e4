"""The bounded sample queue between sampled requests and a `Sink`, drained by one thread.

`offer` never blocks and never raises: past `maxsize` it drops the new samples and counts them
(`benchwatch.probe.dropped{reason="queue_full"}`); samples a sink fails to take are counted
with `reason="sink_error"` and the failure is logged once.

A sink that buffers and delivers on its own (`probes.sinks.kafka.KafkaSink`) can lose samples
after `send` returned. If it has `dropped_counts() -> Mapping[str, int]` (reason -> samples,
cumulative), `dropped` adds those reasons (`sink_buffer_full`, `sink_failed`), so the one
`benchwatch.probe.dropped` series tells where every lost sample went.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence

from probes.samples import Sample, Sink
from probes.state import Faults

__all__ = ["SampleQueue"]

log = logging.getLogger("probes")


class SampleQueue:
    def __init__(self, sink: Sink, faults: Faults, maxsize: int = 10_000, batch_size: int = 256,
                 flush_interval_s: float = 1.0) -> None:
        if maxsize < 1:
            raise ValueError(f"queue_size must be >= 1, got {maxsize}")
        self.sink = sink
        self.faults = faults
        self.maxsize = maxsize
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._q: collections.deque[Sample] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drop_lock = threading.Lock()
        self._dropped: dict[str, int] = {"queue_full": 0, "sink_error": 0}
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="benchwatch-samples", daemon=True)
        self._thread.start()

    def offer(self, samples: list[Sample]) -> bool:
        """Enqueue without waiting; False (and counted) when the queue is full or closed."""
        if self._stop.is_set() or len(self._q) + len(samples) > self.maxsize:
            self._drop("queue_full", len(samples))
            return False
        self._q.extend(samples)  # deque.extend is atomic under the GIL
        if len(self._q) >= self.batch_size:
            self._wake.set()
        return True

    def _drop(self, reason: str, n: int) -> None:
        with self._drop_lock:
            self._dropped[reason] += n

    @property
    def dropped(self) -> dict[str, int]:
        """Samples lost, by reason: the queue's own and, when the sink reports them, the sink's."""
        with self._drop_lock:
            out = dict(self._dropped)
        counts = getattr(self.sink, "dropped_counts", None)
        if counts is not None:
            try:
                for reason, n in counts().items():
                    if reason not in out:  # the queue's own reasons are never overwritten
                        out[str(reason)] = int(n)
            except Exception:  # reading a sink's counters must not break export
                log.debug("reading %s.dropped_counts() failed", type(self.sink).__name__, exc_info=True)
        return out

    def __len__(self) -> int:
        return len(self._q)

    def _take(self) -> list[Sample]:
        batch: list[Sample] = []
        popleft = self._q.popleft
        try:
            while len(batch) < self.batch_size:
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def _send(self, batch: Sequence[Sample]) -> None:
        try:
            self.sink.send(batch)
            self.sent += len(batch)
        except Exception as e:
            self._drop("sink_error", len(batch))
            self.faults.record("sink", e, f"sink {type(self.sink).__name__} failed; {len(batch)} samples lost:")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while self._q and not self._stop.is_set():
                self._send(self._take())

    def flush(self) -> None:
        """Send everything queued now (on the caller's thread; used by close and tests)."""
        while self._q:
            self._send(self._take())

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the drain thread, send what is left, close the sink."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():  # a sink stuck in send(): never call it from two threads
            log.warning("sample sink %s still busy after %.0fs; %d queued samples not sent",
                        type(self.sink).__name__, timeout_s, len(self._q))
            self._drop("sink_error", len(self._q))
            self._q.clear()
            return
        self.flush()
        try:
            self.sink.close()
        except Exception as e:
            self.faults.record("sink", e, "closing the sink failed:")
