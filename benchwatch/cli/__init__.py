"""The `benchwatch` command line: one verb per module in this package.

Each verb module defines `HELP: str`, `add_arguments(parser)` and `run(args) -> ExitCode`. Verbs
are imported only when used, so a serving host without the heavy extras can still run the others.
A verb returns OK, FINDING or INCONCLUSIVE and raises for anything else; `main` prints every
error one way and maps it to the exit-code table in `benchwatch.cli.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from benchwatch.cli.errors import EPILOG, ExitCode, report_error

# verb -> one-line description (kept here so `benchwatch --help` imports nothing heavy)
VERBS: dict[str, str] = {
    "demo": "run the whole product end to end on embedded defaults",
    "bench": "benchmark a model on a suite (LoadGen-like scenarios); the run becomes a baseline",
    "baseline": "build or inspect drift baselines",
    "suite": "build a benchmark suite from your own labelled data (CSV or Parquet)",
    "replay": "replay a suite against a canary (and the primary) and judge it",
    "drift": "run the drift service or compare two samples",
    "collector": "run the sample collector (HTTP ingest)",
    "kafka": "Kafka transport helpers (topics, consumers)",
    "grafana": "generate dashboards or push them to a Grafana server",
    "export": "write the deployment files (Prometheus rules, configs, dashboards) into a directory",
    "rules": "write the Prometheus rules with a chosen drift-page `for:` and promtool tests to match",
    "report": "render dashboards from Prometheus into a static HTML page",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (`--help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _build_parser(verb: str | None) -> argparse.ArgumentParser:
    parser = _Parser(prog="benchwatch", description=__doc__.splitlines()[0],
                                     epilog=EPILOG)
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="logging level (default INFO; DEBUG also prints tracebacks)")
    from benchwatch import __version__

    parser.add_argument("--version", action="version", version=f"benchwatch {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, help_text in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == verb:
            module = importlib.import_module(f"benchwatch.cli.{name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in args_list if a in VERBS), None)
    try:
        parser = _build_parser(verb)
    except Exception as exc:  # noqa: BLE001 - a verb whose module cannot even be imported
        return report_error(exc, f"benchwatch {verb}")
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version (0) or a usage error argparse printed (2)
        return ExitCode.OK if not exc.code else ExitCode.USAGE
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args._run(args) or ExitCode.OK)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        return report_error(exc, f"benchwatch {args.verb}")


if __name__ == "__main__":
    sys.exit(main())
