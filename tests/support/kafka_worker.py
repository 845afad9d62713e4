"""A drift worker as the Kafka tests run it: a `KafkaIngestor` in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from collector.kafka.consumer import ConsumerStats, KafkaIngestor


class IngestorThread:
    def __init__(self, ingestor: KafkaIngestor) -> None:
        self.ingestor = ingestor
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=ingestor.run, args=(self.stop_event,), daemon=True)
        self.thread.start()

    def stats(self) -> ConsumerStats:
        return self.ingestor.stats()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


W = TypeVar("W", bound=IngestorThread)


@contextmanager
def running(make: Callable[..., W]) -> Iterator[Callable[..., W]]:
    """Yields `start(*args)`, which makes and starts a worker; every one still running is
    stopped on exit."""
    started: list[W] = []

    def start(*args: Any) -> W:
        started.append(make(*args))
        return started[-1]

    try:
        yield start
    finally:
        for w in started:
            if w.thread.is_alive():
                w.stop()
