"""benchwatch collector: ingest sample batches into bounded, durable windows."""

from collector.errors import CollectorConfigError
from collector.ingest import Collector, IngestReport
from collector.sink import InProcessSink
from collector.windows import StoredSample, WindowStore

__all__ = ["Collector", "CollectorConfigError", "InProcessSink", "IngestReport", "StoredSample", "WindowStore"]
