"""The connection options of every benchwatch HTTP server (`collector serve`, `drift serve`, the
example model server): idle and read timeouts, a connection cap, TLS.

The defaults are `collector.http_server.ServerOptions`'s, repeated so that `--help` imports no
collector (tests/reliability/test_server_limits.py checks they agree).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

DEFAULT_IDLE_TIMEOUT_S = 30.0
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 128


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def add_server_options(parser: argparse.ArgumentParser,
                       max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
    g = parser.add_argument_group("connections and TLS")
    g.add_argument("--idle-timeout", type=_seconds, default=DEFAULT_IDLE_TIMEOUT_S, metavar="S",
                   help="close a connection that has waited this long for a request "
                        "(default %(default)g)")
    g.add_argument("--read-timeout", type=_seconds, default=DEFAULT_READ_TIMEOUT_S, metavar="S",
                   help="a request (line, headers, body) must arrive within this of its first "
                        "byte, else 408 and the connection is closed (default %(default)g)")
    g.add_argument("--max-connections", type=_count, default=max_connections, metavar="N",
                   help="open connections at most (default %(default)s); at the cap the "
                        "longest-idle one is closed for a newcomer, or the newcomer gets 503 "
                        "when all are mid-request")
    g.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                   help="serve HTTPS with this certificate (chain)")
    g.add_argument("--tls-key", type=Path, default=None, metavar="PEM",
                   help="its private key (default: inside the --tls-cert file)")


def server_options(args: argparse.Namespace) -> Any:
    """The `collector.http_server.ServerOptions` the options above describe (ConfigError for
    a key without a certificate or files TLS cannot load)."""
    from collector.http_server import ServerOptions

    options = ServerOptions(idle_timeout_s=args.idle_timeout, read_timeout_s=args.read_timeout,
                            max_connections=args.max_connections, tls_cert=args.tls_cert,
                            tls_key=args.tls_key)
    options.ssl_context()  # unreadable certificate or key: say so now, before anything starts
    return options
