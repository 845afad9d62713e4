"""The bounded sample queue between sampled requests and a `Sink`, drained by one thread.

A sampled request pays only for a snapshot on its own thread (`offer_snapshot`): the time,
latency, (model, version), a private copy of the output rows that become samples (at most
`MAX_SAMPLE_ROWS` rows and `MAX_ROW_VALUES` numbers: columns are bounded as well as rows), and
the inputs callable's result (one mapping for the call, or one per row: `input_rows`). The drain thread turns snapshots into `Sample`s (`summarize_output`,
sample ids, the frozen records) and hands them to the sink, so that work is off the request
path. `offer` (ready-made `Sample`s) is kept for callers that build their own.

The queue is bounded in samples (`maxsize`: a snapshot counts as the samples it will become)
and in bytes of copied output rows (`max_bytes`: wide outputs such as LLM logits would
otherwise hold far more memory per queued sample than finished summaries do). `offer` and
`offer_snapshot` never wait for the sink and never raise: past either bound they drop and
count (`benchwatch.probe.dropped{reason="queue_full"}`, exactly, in samples); samples a sink
fails to take are counted with `reason="sink_error"` and the failure is logged once; a
snapshot that cannot be summarized is a `sampling` fault, as it was on the serving thread. A
sampled call whose output has one row wider than `MAX_ROW_VALUES` numbers copies nothing: the
samples it would have become are counted with `reason="too_wide"` (`count_dropped`).

A sink that buffers and delivers on its own (`probes.sinks.kafka.KafkaSink`) can lose samples
after `send` returned. If it has `dropped_counts() -> Mapping[str, int]` (reason -> samples,
cumulative), `dropped` adds those reasons (`sink_buffer_full`, `sink_failed`), so the one
`benchwatch.probe.dropped` series tells where every lost sample went.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from probes.errors import ConfigError
from probes.samples import Feature, Sample, Sink, new_sample_ids
from probes.state import Faults
from probes.summarize import summarize_output

__all__ = ["MAX_SAMPLE_ROWS", "READY_ROWS", "InputRows", "SampleQueue", "build_samples", "input_rows"]

log = logging.getLogger("probes")

MAX_SAMPLE_ROWS = 64  # rows of one sampled call that become Samples (bounds the drain cost)
# ... and at most MAX_ROW_VALUES (probes.summarize) numbers copied per sampled call: 64 rows of up
# to 4096 columns, or fewer wider rows, down to one row of 262 144 (an LLM vocabulary).
READY_ROWS = "rows"  # snapshot kind: `data` is already a list of feature dicts (outputs=callable/None)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # copied output rows held by the queue at most
_NO_INPUTS: Mapping[str, Feature] = MappingProxyType({})

# A queue entry is a plain tuple (cheapest to build on the serving thread):
#   (n_samples, n_bytes, samples: list[Sample])                                  ready samples
#   (n_samples, n_bytes, model, version, timestamp, latency_s, data, kind, inputs)  a snapshot
_Entry = tuple[Any, ...]


# what an `inputs=` callable returns: one mapping for the call, or one per row of a batch
InputRows = Mapping[str, Feature] | Sequence[Mapping[str, Feature]]


def input_rows(value: Any) -> dict[str, Feature] | list[dict[str, Feature]]:
    """What an `inputs=` callable returned, taken on the serving thread: one mapping (the
    call's inputs, given to each of its samples: a single-row call) or a sequence of mappings,
    one per row of a batch (row i's inputs go to row i's sample; at most MAX_SAMPLE_ROWS are
    copied, as for the output rows)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple) and all(isinstance(r, Mapping) for r in value):
        return [dict(r) for r in value[:MAX_SAMPLE_ROWS]]
    raise TypeError(f"inputs= must return a mapping {{name: value}} or a list of them (one per "
                    f"row of a batch), got {type(value).__name__}")


def _summary_rows(snapshot: _Entry) -> list[dict[str, Feature]]:
    data, kind, inp = snapshot[6], snapshot[7], snapshot[8]
    rows: list[dict[str, Feature]] = data if kind == READY_ROWS else summarize_output(data, kind)
    rows = rows[:MAX_SAMPLE_ROWS] if len(rows) > MAX_SAMPLE_ROWS else rows
    if isinstance(inp, list) and len(inp) != len(rows):  # pairing them would mislabel rows
        raise ValueError(f"inputs= returned {len(inp)} rows for an output of {len(rows)} rows "
                         f"(kept at most {MAX_SAMPLE_ROWS}): return one mapping per output row")
    return rows


def _samples(snapshot: _Entry, rows: list[dict[str, Feature]], ids: list[str]) -> list[Sample]:
    _, _, model, version, ts, latency, _, _, inp = snapshot
    if isinstance(inp, list):  # one mapping per row: row i's inputs with row i's outputs
        return [Sample(model, version, sid, ts, r, MappingProxyType(i) if i else _NO_INPUTS,
                       latency) for sid, r, i in zip(ids, rows, inp, strict=True)]
    inputs = MappingProxyType(inp) if inp else _NO_INPUTS  # one read-only view for the call's rows
    return [Sample(model, version, sid, ts, r, inputs, latency) for sid, r in zip(ids, rows, strict=True)]


def build_samples(snapshot: _Entry) -> list[Sample]:
    """The `Sample`s one snapshot stands for; what the serving thread used to build itself:
    `summarize_output` of the kept rows (at most MAX_SAMPLE_ROWS), one id per row, the call's
    inputs as one read-only view shared by its rows. Raises what `summarize_output` raises."""
    rows = _summary_rows(snapshot)
    return _samples(snapshot, rows, new_sample_ids(len(rows)))


class SampleQueue:
    def __init__(self, sink: Sink, faults: Faults, maxsize: int = 10_000, batch_size: int = 256,
                 flush_interval_s: float = 1.0, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if maxsize < 1:
            raise ConfigError(f"queue_size must be >= 1, got {maxsize}")
        if max_bytes < 1:
            raise ConfigError(f"max_bytes must be >= 1, got {max_bytes}")
        self.sink = sink
        self.faults = faults
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._q: collections.deque[_Entry] = collections.deque()
        # One short lock makes the bound and the drop count exact; it is held for a few
        # bytecodes, never across a sink call or a summary.
        self._lock = threading.Lock()
        self._size = 0  # samples queued (snapshots count as the samples they become)
        self._bytes = 0  # bytes of copied output rows queued
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._dropped: dict[str, int] = {"queue_full": 0, "sink_error": 0}
        self._send_lock = threading.Lock()  # the drain thread and flush() never call the sink together
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="benchwatch-samples", daemon=True)
        self._thread.start()

    def offer(self, samples: list[Sample]) -> bool:
        """Enqueue ready samples without waiting; False (and counted) when full or closed."""
        return self._put((len(samples), 0, samples))

    def offer_snapshot(self, n: int, nbytes: int, model: str, version: str, timestamp: float,
                       latency_s: float, data: Any, kind: Any,
                       inputs: dict[str, Feature] | list[dict[str, Feature]] | None) -> bool:
        """Enqueue what one sampled call will become: `n` samples built on the drain thread
        from `data` (a private copy of the kept output rows, summarized as `kind`, or a list of
        feature dicts when `kind` is READY_ROWS). `nbytes`: the copy's size, for the byte bound."""
        # _put inlined: this runs on the serving thread of every sampled request
        with self._lock:
            if self._stop.is_set() or self._size + n > self.maxsize or \
                    (nbytes and self._bytes + nbytes > self.max_bytes):
                self._dropped["queue_full"] += n
                return False
            self._q.append((n, nbytes, model, version, timestamp, latency_s, data, kind, inputs))
            self._size += n
            self._bytes += nbytes
            size = self._size
        if size >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def _put(self, entry: _Entry) -> bool:
        n, nbytes = entry[0], entry[1]
        with self._lock:
            if self._stop.is_set() or self._size + n > self.maxsize or \
                    (nbytes and self._bytes + nbytes > self.max_bytes):
                self._dropped["queue_full"] += n
                return False
            self._q.append(entry)
            self._size += n
            self._bytes += nbytes
            size = self._size
        if size >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def count_dropped(self, reason: str, n: int) -> None:
        """Count `n` samples lost before they reached the queue (`too_wide`: a sampled call's
        output row was too wide to copy), next to the queue's own drops."""
        self._drop(reason, n)

    def _drop(self, reason: str, n: int) -> None:
        with self._lock:  # a reason appears once it happens (queue_full, sink_error from the start)
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    @property
    def dropped(self) -> dict[str, int]:
        """Samples lost, by reason: the queue's own and, when the sink reports them, the sink's."""
        with self._lock:
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
        """Samples queued (a snapshot counts as the samples it will become)."""
        return self._size

    def reset(self) -> None:
        """Discard everything queued and zero the drop counts (tests, benchmarks)."""
        with self._lock:
            self._q.clear()
            self._size = self._bytes = 0
            self._dropped = dict.fromkeys(self._dropped, 0)

    def _take(self) -> list[_Entry]:
        """Entries worth about one batch (at least one entry, at most batch_size samples
        unless the first entry alone is bigger)."""
        batch: list[_Entry] = []
        n = 0
        with self._lock:
            q = self._q
            while q and (not batch or n + q[0][0] <= self.batch_size):
                e = q.popleft()
                batch.append(e)
                n += e[0]
                self._size -= e[0]
                self._bytes -= e[1]
        return batch

    def _build(self, entries: list[_Entry]) -> list[Sample]:
        """Samples of a batch of entries, in order; one `os.urandom` for all their ids."""
        parts: list[tuple[_Entry | None, list[Any]]] = []
        total = 0
        for e in entries:
            if len(e) == 3:
                parts.append((None, e[2]))
                continue
            try:
                rows = _summary_rows(e)
            except Exception as exc:  # a bad output: a fault, as it was on the serving thread
                self.faults.record("sampling", exc, f"{e[2]}/{e[3]}:")
                continue
            parts.append((e, rows))
            total += len(rows)
        ids = new_sample_ids(total) if total else []
        out: list[Sample] = []
        i = 0
        for snap, items in parts:
            if snap is None:
                out.extend(items)
            else:
                out.extend(_samples(snap, items, ids[i:i + len(items)]))
                i += len(items)
        return out

    def _send(self, batch: Sequence[Sample]) -> None:
        try:
            self.sink.send(batch)
            self.sent += len(batch)
        except Exception as e:
            self._drop("sink_error", len(batch))
            self.faults.record("sink", e, f"sink {type(self.sink).__name__} failed; {len(batch)} samples lost:")

    def _drain_once(self) -> bool:
        """Build and send one batch; False when nothing was queued."""
        with self._send_lock:
            entries = self._take()
            if not entries:
                return False
            samples = self._build(entries)
            for i in range(0, len(samples), self.batch_size):
                self._send(samples[i:i + self.batch_size])
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while self._q and not self._stop.is_set():
                self._drain_once()

    def flush(self) -> None:
        """Send everything queued now (on the caller's thread; used by close and tests)."""
        while self._drain_once():
            pass

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the drain thread, send what is left, close the sink."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():  # a sink stuck in send(): never call it from two threads
            log.warning("sample sink %s still busy after %.0fs; %d queued samples not sent",
                        type(self.sink).__name__, timeout_s, self._size)
            with self._lock:
                self._dropped["sink_error"] += self._size
                self._q.clear()
                self._size = self._bytes = 0
            return
        self.flush()
        try:
            self.sink.close()
        except Exception as e:
            self.faults.record("sink", e, "closing the sink failed:")
