"""benchwatch collector: ingest sample batches into bounded, durable windows."""

from collector.ingest import Collector, IngestReport
from collector.sink import InProcessSink
from collector.windows import StoredSample, WindowStore

__all__ = ["Collector", "InProcessSink", "IngestReport", "StoredSample", "WindowStore"]
