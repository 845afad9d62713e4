"""`InProcessSink`: the embedded transport, a `probes.Sink` that hands samples to a Collector."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collector.ingest import Collector, IngestReport
from probes.samples import Sample

log = logging.getLogger(__name__)


class InProcessSink:
    """Delivers samples straight to `collector` in the probe's drain thread (no I/O but SQLite).

    `send` returns normally even when samples are rejected (they are counted by the collector);
    it raises only when the store itself fails, which the probe's queue counts and logs.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.last_report: IngestReport | None = None
        self._closed = False

    def send(self, samples: Sequence[Sample]) -> None:
        if self._closed:
            raise RuntimeError("InProcessSink is closed")
        self.last_report = self.collector.ingest(samples)

    def close(self) -> None:
        self._closed = True
