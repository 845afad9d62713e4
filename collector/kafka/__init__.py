"""Kafka transport, consumer side: consumer-group ingest into the collector, window snapshots in
a compacted topic, and the topic settings. Needs `pip install 'benchwatch[kafka]'`."""

from collector.kafka.consumer import ConsumerStats, KafkaIngestor, run_consumer

__all__ = ["ConsumerStats", "KafkaIngestor", "run_consumer"]
