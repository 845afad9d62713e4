"""`benchwatch drift serve|compare`: run the drift service, or compare two CSV samples."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from benchwatch.cli._secrets import add_secret, secret
from benchwatch.cli._server_options import add_server_options, server_options
from benchwatch.cli._until_stopped import wait_until_stopped
from benchwatch.cli._values import non_empty, number, port, whole
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError

log = logging.getLogger(__name__)

TOKEN_ENV = "BENCHWATCH_TOKEN"
HMAC_ENV = "BENCHWATCH_WEBHOOK_HMAC_SECRET"
MAX_INTERVAL_S = 86_400.0  # drift.service.engine.MAX_INTERVAL_S (not imported: --help stays light)
MAX_WINDOW = 10_000_000  # values per feature window


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="drift_command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="run the drift service",
                           description="Evaluate live windows against baselines on an interval; "
                           "export benchwatch_drift_* metrics; receive samples, labels, alerts.")
    serve.add_argument("--baselines", required=True, type=lambda t: Path(non_empty(t)),
                       metavar="DIR",
                       help="directory of baseline .json/.npz files")
    serve.add_argument("--state", type=Path, default=None, metavar="PATH",
                       help="SQLite file for the windows (default: in memory, lost at exit)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; others need --token)")
    # defaults below the probe's 9464 + port span: never the same ports (docs/deploy.md)
    serve.add_argument("--port", type=port, default=9462, help="metrics port (default 9462)")
    serve.add_argument("--ingest-port", type=whole(-1, 65535), default=9463,
                       help="HTTP port for samples/labels/alerts (default 9463; -1: none)")
    serve.add_argument("--interval", type=number(0, MAX_INTERVAL_S, unit="seconds"),
                       default=30.0, metavar="S",
                       help="seconds between evaluations (default 30, at most a day)")
    add_secret(serve, "--token", TOKEN_ENV,
               f"bearer token for the HTTP endpoints (default ${TOKEN_ENV})")
    add_secret(serve, "--webhook-hmac-secret", HMAC_ENV,
               f"also accept alert webhooks signed with this secret (default ${HMAC_ENV})")
    serve.add_argument("--alpha", type=float, default=0.05,
                       help="family-wise error rate per model (Holm) (default 0.05)")
    serve.add_argument("--min-samples", type=whole(2, MAX_WINDOW), default=100,
                       help="test a window once it holds this many values (default 100)")
    serve.add_argument("--window", type=whole(1, MAX_WINDOW), default=5000,
                       help="values kept per feature window (default 5000)")
    serve.add_argument("--max-age", type=number(0, MAX_INTERVAL_S * 30, low_inclusive=True,
                                                 unit="seconds"),
                       default=300.0, metavar="S",
                       help="a window holds only values that arrived in the last S seconds, so "
                       "drift resolves within about S once traffic is normal again (default 300; "
                       "0: by count only)")
    serve.add_argument("--allow-missing-features", action="store_true",
                       help="accept samples lacking some baseline features")
    serve.add_argument("--stream-ert", type=number(0, 1e18, low_inclusive=True), default=0.0,
                       metavar="N",
                       help="also run a streaming CUSUM per numeric feature with a mean of N "
                       "values between false alarms (default 0: off)")
    serve.add_argument("--price-usd-per-hour", type=number(0, 1e6, low_inclusive=True),
                       default=None, help="what one serving process costs per hour: exported "
                       "as benchwatch_price_usd_per_hour for the $ per 1 000 inferences rules")
    serve.add_argument("--price-usd-per-kwh", type=number(0, 1e3, low_inclusive=True),
                       default=None, help="what energy costs: benchwatch_price_usd_per_kwh")
    serve.add_argument("--kafka", default=None, metavar="BOOTSTRAP",
                       help="also consume samples from Kafka (host:port[,host:port]) as a member "
                       "of --group; run several workers with one group to share the models")
    add_server_options(serve)
    serve.add_argument("--kafka-topic", default="benchwatch.samples", help="samples topic")
    serve.add_argument("--group", default="benchwatch-drift", help="Kafka consumer group")
    serve.add_argument("--kafka-state-topic", dest="state_topic", default="auto",
                       help="compacted window-state topic ('auto': TOPIC.window-state; 'none')")
    serve.add_argument("--kafka-dead-letter-topic", dest="dead_letter_topic", default="auto",
                       help="unreadable records go here ('auto': TOPIC.dead-letter; 'none')")

    cmp_ = sub.add_parser("compare", help="compare two CSV samples column by column",
                          description="Drift test per common column of two CSV files (and a "
                          "missing-rate test where cells are empty), Holm across them: the drift "
                          "service's verdict (drift.compare_features). Exit 0: no drift, "
                          "1: drift, 2: bad input, 3: could not run.")
    cmp_.add_argument("reference", type=Path, help="reference CSV (with a header row)")
    cmp_.add_argument("current", type=Path, help="current CSV (with a header row)")
    cmp_.add_argument("--column", action="append", default=None,
                      help="only these columns (repeatable)")
    cmp_.add_argument("--test", default=None, help="test name (default per kind)")
    cmp_.add_argument("--alpha", type=float, default=0.05,
                      help="family-wise error rate across columns (Holm) (default 0.05)")
    cmp_.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> ExitCode:
    if args.drift_command == "serve":
        return _serve(args)
    return _compare(args)


def _serve(args: argparse.Namespace) -> ExitCode:
    from benchwatch.grafana.annotations import GrafanaAnnotations
    from drift.service.engine import DriftService, ServiceConfig

    config = ServiceConfig(
        baselines_dir=args.baselines, state_path=args.state, host=args.host,
        metrics_port=args.port,
        ingest_port=None if args.ingest_port is not None and args.ingest_port < 0
        else args.ingest_port,
        interval_s=args.interval, token=secret(args, "--token", TOKEN_ENV),
        webhook_hmac_secret=secret(args, "--webhook-hmac-secret", HMAC_ENV), alpha=args.alpha,
        min_samples=args.min_samples, max_per_feature=args.window,
        max_age_s=args.max_age or None,
        require_features=not args.allow_missing_features, stream_ert=args.stream_ert,
        server=server_options(args), price_usd_per_hour=args.price_usd_per_hour,
        price_usd_per_kwh=args.price_usd_per_kwh)
    if args.kafka:
        from benchwatch.cli.kafka import consumer_options, quiet_kafka_client, require_topics

        quiet_kafka_client()
        args.topic = args.kafka_topic
        require_topics(args.kafka, consumer_options(args), args.kafka_topic)
    annotations = GrafanaAnnotations.from_env()  # GRAFANA_URL set: alerts become regions
    service = DriftService(config)
    if annotations is not None:
        service.alerts.add_listener(annotations.on_alerts)
    service.start()
    stop = threading.Event()
    consumer = _start_kafka(args, service, stop) if args.kafka else None
    print(f"drift service: metrics {service.metrics_url}"
          + (f", HTTP {service.url}" if service.url else "")
          + f"; baselines {', '.join(service.status()['baselines']) or '(none)'}"
          + ("" if args.state else "; windows in memory only (--state PATH keeps them across "
             "restarts)"), flush=True)
    try:
        wait_until_stopped(stop)
    finally:
        if consumer is not None:
            consumer.join(timeout=30)
        service.stop()
        if annotations is not None:
            annotations.close()
    return ExitCode.OK


def _start_kafka(args: argparse.Namespace, service: Any, stop: threading.Event) -> threading.Thread:
    """Consume the samples topic into the service's collector (collector.kafka.consumer); the consumer's
    counts (lag, poison records, restores) are `service.kafka.stats()`."""
    from benchwatch.cli.kafka import consumer_options
    from collector.kafka.consumer import KafkaIngestor

    service.kafka = KafkaIngestor(service.collector, args.kafka.split(","), args.kafka_topic,
                                  args.group, **consumer_options(args))
    thread = threading.Thread(target=service.kafka.run, args=(stop,), name="kafka-consumer",
                              daemon=True)
    thread.start()
    print(f"drift service: consuming {args.kafka_topic} from {args.kafka} as group {args.group}",
          flush=True)
    return thread


def _read_csv(path: Path) -> dict[str, list[Any]]:
    """Columns of a CSV: numeric when every non-empty cell parses as a finite float, else text;
    empty cells are missing (None)."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    if len(rows) < 2:
        raise UsageError(f"{path}: need a header row and at least one data row")
    header, body = rows[0], rows[1:]
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(header):
        cells = [r[i].strip() if i < len(r) else "" for r in body]
        try:
            nums = [None if c == "" else float(c) for c in cells]
            if all(x is None or math.isfinite(x) for x in nums):
                columns[name] = nums
                continue
        except ValueError:
            pass
        columns[name] = [None if c == "" else c for c in cells]
    return columns


def _compare(args: argparse.Namespace) -> ExitCode:
    from drift.features import compare_features
    from drift.result import DriftError

    ref, cur = _read_csv(args.reference), _read_csv(args.current)
    names = args.column or [c for c in ref if c in cur]
    missing = [c for c in names if c not in ref or c not in cur]
    if missing or not names:
        raise UsageError(f"columns {missing or '(none in common)'} are not in both files; "
                         f"{args.reference} has {list(ref)}, {args.current} has {list(cur)}")
    # the one multi-feature verdict (the drift service's too): Holm across every test run
    result = compare_features({n: ref[n] for n in names}, {n: cur[n] for n in names},
                              correction="holm", alpha=args.alpha,
                              tests=dict.fromkeys(names, args.test))
    if result.failed:
        raise DriftError("; ".join(f"column {n!r}: {why}" for n, why in result.failed.items()))
    rows: list[dict[str, Any]] = [{"column": f.feature, **f.result.to_dict(), "p_value_holm": f.adjusted_p_value,
             "drift": f.detected} for f in result.features]
    if args.json:
        print(json.dumps({"columns": rows, "drift": any(r["drift"] for r in rows)}, indent=2))
    else:
        print(f"{'column':24} {'test':12} {'score':>10} {'threshold':>10} {'p (Holm)':>10}  drift")
        for row in rows:
            p = "n/a" if row["p_value_holm"] is None else f"{row['p_value_holm']:.3g}"
            print(f"{row['column'][:24]:24} {row['test']:12} {row['score']:10.4g} "
                  f"{row['threshold']:10.4g} {p:>10}  {'DRIFT' if row['drift'] else '-'}")
    return ExitCode.FINDING if any(r["drift"] for r in rows) else ExitCode.OK
