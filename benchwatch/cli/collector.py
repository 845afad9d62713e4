"""`benchwatch collector serve|windows`: a standalone HTTP ingest into a durable window store.

The drift service embeds a collector (and its `/v1/samples`); run this one when samples should
be collected on another host or before any baseline exists. `windows` prints what a store holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from benchwatch.cli._until_stopped import wait_until_stopped

TOKEN_ENV = "BENCHWATCH_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collector_command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="accept POST /v1/samples into a window store")
    serve.add_argument("--state", type=Path, required=True, metavar="PATH",
                       help="SQLite file for the windows (created if missing)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; others need --token)")
    serve.add_argument("--port", type=int, default=9466, help="HTTP port (default 9466)")
    serve.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                       help=f"bearer token senders must present (or ${TOKEN_ENV})")
    serve.add_argument("--window", type=int, default=5000,
                       help="values kept per (model, version, feature) (default 5000)")
    serve.add_argument("--model", action="append", default=None, metavar="MODEL[/VERSION]",
                       help="accept only these models (repeatable; default: any)")
    windows = sub.add_parser("windows", help="print the windows a store holds")
    windows.add_argument("--state", type=Path, required=True, metavar="PATH")
    windows.add_argument("--json", action="store_true")


def _acceptor(allowed: list[str] | None) -> Any:
    if not allowed:
        return lambda m, v: True
    pairs = {tuple(a.split("/", 1)) if "/" in a else (a, None) for a in allowed}
    return lambda m, v: (m, v) in pairs or (m, None) in pairs


def run(args: argparse.Namespace) -> int:
    from collector import Collector, WindowStore
    from collector.http_server import ingest_server

    if args.collector_command not in ("serve", "windows"):
        print("usage: benchwatch collector serve --state PATH | windows --state PATH",
              file=sys.stderr)
        return 2
    if args.collector_command == "windows" and not args.state.exists():
        print(f"benchwatch collector: no store at {args.state}", file=sys.stderr)
        return 2
    try:
        store = WindowStore(args.state, max_per_feature=getattr(args, "window", 5000))
    except ValueError as exc:
        print(f"benchwatch collector: {exc}", file=sys.stderr)
        return 2
    if args.collector_command == "windows":
        rows = [{"model": m, "model_version": v, "feature": f, "values": store.count(m, v, f)}
                for m, v, f in store.keys()]
        store.close()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                print(f"{r['model']:20} {r['model_version']:10} {r['feature']:30} {r['values']}")
        return 0
    collector = Collector(store, accept=_acceptor(args.model))
    try:
        server = ingest_server(collector, args.host, args.port, args.token or None).start()
    except ValueError as exc:
        store.close()
        print(f"benchwatch collector: {exc}", file=sys.stderr)
        return 2
    print(f"collector: POST {server.url}/v1/samples -> {args.state}", flush=True)
    try:
        wait_until_stopped(threading.Event())
    finally:
        server.stop()
        store.close()
        print(f"collector: {collector.totals().to_dict()}", flush=True)
    return 0
