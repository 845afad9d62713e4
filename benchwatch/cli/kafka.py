"""`benchwatch kafka topics|consume|lag`: create the topics, run a drift-window worker, show lag.

The broker itself is started by scripts/kafka.sh (tests and the README share it).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from benchwatch.cli._values import DAY_S, non_empty, number, seconds, whole
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError
from benchwatch.services import ServiceError
from probes.errors import require

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_TOPIC = "benchwatch.samples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kafka_command", metavar="COMMAND", required=True)

    topics = sub.add_parser("topics", help="create the samples, dead-letter and window-state topics",
                            description="Create benchwatch's topics (settings as in "
                            "deploy/kafka/topics.json); existing topics are left alone.")
    topics.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, type=non_empty,
                        help="host:port[,host:port]")
    topics.add_argument("--topic", default=DEFAULT_TOPIC, type=non_empty,
                        help="samples topic (default %(default)s)")
    topics.add_argument("--partitions", type=whole(1, 10_000), default=12,
                        help="partitions of the samples and state topics (default 12)")
    topics.add_argument("--spec", type=Path, default=None,
                        help="a topics.json to use instead of the built-in settings")

    consume = sub.add_parser("consume", help="consume samples into windows as a group member",
                             description="One drift-window worker of a consumer group: samples "
                             "topic -> durable windows; runs until SIGTERM/Ctrl-C.")
    _consumer_arguments(consume)
    consume.add_argument("--state", type=Path, required=True, metavar="PATH",
                         help="SQLite file for this worker's windows")
    consume.add_argument("--window", type=whole(1, 10_000_000), default=5000,
                         help="values kept per feature window")
    consume.add_argument("--stats-interval", type=number(0, DAY_S, low_inclusive=True),
                         default=0.0, metavar="S",
                         help="print stats as JSON lines every S seconds (default: only at exit)")

    lag = sub.add_parser("lag", help="committed offsets and lag of a group",
                         description="Committed offsets, log end offsets and lag per partition, "
                         "as JSON.")
    lag.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, type=non_empty,
                     help="host:port[,host:port]")
    lag.add_argument("--topic", default=DEFAULT_TOPIC, type=non_empty,
                     help="samples topic (default %(default)s)")
    lag.add_argument("--group", default="benchwatch-drift", help="consumer group")


def _consumer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, type=non_empty,
                   help="host:port[,host:port]")
    p.add_argument("--topic", default=DEFAULT_TOPIC, type=non_empty,
                   help="samples topic (default %(default)s)")
    p.add_argument("--group", default="benchwatch-drift", help="consumer group (default %(default)s)")
    p.add_argument("--state-topic", default="auto", metavar="NAME",
                   help="compacted window-state topic: 'auto' = TOPIC.window-state, 'none' = "
                   "no checkpoints (one worker only)")
    p.add_argument("--dead-letter-topic", default="auto", metavar="NAME",
                   help="where unreadable records are copied: 'auto' = TOPIC.dead-letter, 'none'")
    p.add_argument("--commit-interval", type=seconds, default=1.0, metavar="S",
                   help="seconds between checkpoints (window snapshots + offset commit); longer "
                   "costs less with many models, replays more after a failover (default 1)")


def consumer_options(args: argparse.Namespace) -> dict[str, Any]:
    """KafkaIngestor options from the consumer arguments (also used by `drift serve --kafka`)."""
    def pick(value: str, suffix: str) -> str | None:
        if value == "none":
            return None
        return f"{args.topic}.{suffix}" if value == "auto" else value

    return {"state_topic": pick(args.state_topic, "window-state"),
            "dead_letter_topic": pick(args.dead_letter_topic, "dead-letter"),
            "commit_interval_s": float(getattr(args, "commit_interval", 1.0))}


def quiet_kafka_client() -> None:
    """kafka-python logs every connection step at INFO; keep its warnings and errors only."""
    client = logging.getLogger("kafka")
    client.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


def run(args: argparse.Namespace) -> ExitCode:
    require("kafka", "kafka", "benchwatch kafka")
    from kafka.errors import KafkaError

    quiet_kafka_client()
    try:
        if args.kafka_command == "topics":
            return _topics(args)
        if args.kafka_command == "consume":
            return _consume(args)
        from collector.kafka.topics import describe

        print(json.dumps(describe(args.bootstrap.split(","), args.group, args.topic), indent=2))
    except KafkaError as e:
        raise ServiceError(f"Kafka at {args.bootstrap}: {type(e).__name__}: {e}; is the broker "
                           "running?") from e
    return ExitCode.OK


def _topics(args: argparse.Namespace) -> ExitCode:
    from collector.kafka.topics import create_topics, default_topics, load_specs

    specs = load_specs(args.spec) if args.spec else default_topics(args.topic, args.partitions)
    print(json.dumps(create_topics(args.bootstrap.split(","), specs), indent=2))
    return ExitCode.OK


def require_topics(bootstrap: str, options: dict[str, Any], topic: str) -> None:
    """Raise, saying what to do, unless Kafka answers and has every topic the consumer uses
    (ConnectionError when it cannot be reached, UsageError naming the missing topics)."""
    require("kafka", "kafka", "consuming samples from Kafka")
    from collector.kafka.topics import missing_topics

    missing = missing_topics(bootstrap.split(","), [topic, options.get("state_topic"),
                                                    options.get("dead_letter_topic")])
    if missing:
        raise UsageError(f"topics {', '.join(missing)} do not exist at {bootstrap}: create them "
                         f"with `benchwatch kafka topics --bootstrap {bootstrap} --topic {topic}` "
                         "(or pass --state-topic none / --dead-letter-topic none)")


def _consume(args: argparse.Namespace) -> ExitCode:
    from collector import Collector, WindowStore
    from collector.kafka.consumer import KafkaIngestor

    # the store first: a bad --state is the user's to fix (exit 2) whether or not Kafka is up
    store = WindowStore(args.state, max_per_feature=args.window)
    try:
        require_topics(args.bootstrap, consumer_options(args), args.topic)
    except BaseException:
        store.close()
        raise
    ingestor = KafkaIngestor(Collector(store), args.bootstrap.split(","), args.topic, args.group,
                             **consumer_options(args))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=ingestor.run, args=(stop,), name="kafka-consumer", daemon=True)
    thread.start()
    print(json.dumps({"event": "started", "topic": args.topic, "group": args.group}), flush=True)
    interval = args.stats_interval if args.stats_interval > 0 else 1.0
    while thread.is_alive() and not stop.wait(interval):
        if args.stats_interval > 0:
            print(json.dumps(_stats_dict(ingestor)), flush=True)
    stop.set()
    thread.join(timeout=30)
    print(json.dumps({"event": "stopped", **_stats_dict(ingestor)}), flush=True)
    store.close()
    return ExitCode.OK


def _stats_dict(ingestor: Any) -> dict[str, Any]:
    s = ingestor.stats()
    return {k: dict(v) if hasattr(v, "items") else (list(v) if isinstance(v, tuple) else v)
            for k, v in s.__dict__.items()}
