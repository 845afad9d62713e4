"""`benchwatch collector serve|windows`: a standalone HTTP ingest into a durable window store.

The drift service embeds a collector (and its `/v1/samples`); run this one when samples should
be collected on another host or before any baseline exists. `windows` prints what a store holds.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from benchwatch.cli._secrets import add_secret, secret
from benchwatch.cli._server_options import add_server_options, server_options
from benchwatch.cli._until_stopped import wait_until_stopped
from benchwatch.cli._values import port, whole
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError

TOKEN_ENV = "BENCHWATCH_TOKEN"
# the collector's defaults, repeated here so that `--help` needs no import of the collector
DEFAULT_MAX_MODELS = 64  # collector.ingest.DEFAULT_MAX_MODELS
DEFAULT_MAX_FEATURES = 256  # collector.ingest.DEFAULT_MAX_FEATURES
DEFAULT_MAX_SAMPLES = 10_000  # collector.http_server.DEFAULT_MAX_SAMPLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collector_command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="accept POST /v1/samples into a window store")
    serve.add_argument("--state", type=Path, required=True, metavar="PATH",
                       help="SQLite file for the windows (created if missing)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; others need --token)")
    serve.add_argument("--port", type=port, default=9463, help="HTTP port (default 9463)")
    add_secret(serve, "--token", TOKEN_ENV,
               f"bearer token senders must present (default ${TOKEN_ENV})")
    serve.add_argument("--window", type=whole(1, 10_000_000), default=5000,
                       help="values kept per (model, version, feature) (default 5000)")
    serve.add_argument("--model", action="append", default=None, metavar="MODEL[/VERSION]",
                       type=_model_spec,
                       help="accept only these models (repeatable; default: any)")
    serve.add_argument("--max-models", type=int, default=DEFAULT_MAX_MODELS, metavar="N",
                       help="model versions kept, at most (default %(default)s); samples of "
                            "more are rejected as too_many_models")
    serve.add_argument("--max-features", type=int, default=DEFAULT_MAX_FEATURES, metavar="N",
                       help="features per model version, at most (default %(default)s); "
                            "samples adding more are rejected as too_many_features")
    serve.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, metavar="N",
                       help="samples per request, at most (default %(default)s; 413 past it)")
    add_server_options(serve)
    windows = sub.add_parser("windows", help="print the windows a store holds")
    windows.add_argument("--state", type=Path, required=True, metavar="PATH")
    windows.add_argument("--json", action="store_true")


def _model_spec(text: str) -> str:
    """MODEL or MODEL/VERSION, neither part empty."""
    parts = text.split("/")
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not MODEL or MODEL/VERSION")
    return text


def _acceptor(allowed: list[str] | None) -> Any:
    if not allowed:
        return lambda m, v: True
    pairs = {tuple(a.split("/", 1)) if "/" in a else (a, None) for a in allowed}
    return lambda m, v: (m, v) in pairs or (m, None) in pairs


def run(args: argparse.Namespace) -> ExitCode:
    if args.collector_command == "windows":
        return _windows(args)
    from collector import Collector, WindowStore
    from collector.http_server import ingest_server

    for flag, value in (("--max-models", args.max_models), ("--max-features", args.max_features),
                        ("--max-samples", args.max_samples)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    token = secret(args, "--token", TOKEN_ENV)
    store = WindowStore(args.state, max_per_feature=args.window)
    collector = Collector(store, accept=_acceptor(args.model), max_models=args.max_models,
                          max_features=args.max_features)
    try:
        server = ingest_server(collector, args.host, args.port, token,
                               max_samples=args.max_samples,
                               options=server_options(args)).start()
    except BaseException:
        store.close()
        raise
    print(f"collector: POST {server.url}/v1/samples -> {args.state}", flush=True)
    try:
        wait_until_stopped(threading.Event())
    finally:
        server.stop()
        store.close()
        print(f"collector: {collector.totals().to_dict()}", flush=True)
    return ExitCode.OK


def _windows(args: argparse.Namespace) -> ExitCode:
    from collector import WindowStore

    if not args.state.exists():
        raise UsageError(f"no window store at {args.state}: pass the --state file "
                         "`benchwatch collector serve` writes")
    store = WindowStore(args.state)
    try:
        rows = [{"model": m, "model_version": v, "feature": f, "values": store.count(m, v, f)}
                for m, v, f in store.keys()]
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['model']:20} {r['model_version']:10} {r['feature']:30} {r['values']}")
    return ExitCode.OK
