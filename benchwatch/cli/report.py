"""`benchwatch report --prometheus URL -o report.html`: the dashboards as one static HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchwatch.cli._values import DAY_S, http_url, number, prometheus_duration
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError

HELP = "render dashboards from Prometheus into a static HTML page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", type=http_url,
                        help="Prometheus base URL (default http://127.0.0.1:9090)")
    parser.add_argument("-o", "--out", type=Path, default=Path("report.html"),
                        help="output HTML file (default report.html)")
    parser.add_argument("--minutes", type=number(0, 366 * 24 * 60), default=30.0,
                        help="time range ending now (default 30)")
    parser.add_argument("--step", type=number(0, DAY_S, unit="seconds"), default=None,
                        help="seconds between points (default: range / 240, at least 1)")
    parser.add_argument("--rate-interval", default="1m", type=prometheus_duration,
                        help="window for rate() in place of Grafana's $__rate_interval; at "
                             "least 4 scrape intervals (default 1m)")
    parser.add_argument("--model", help="only this model (default all)")
    parser.add_argument("--version", dest="model_version", help="only this model version")
    parser.add_argument("--instance", help="only this scrape instance (host:port)")


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch.report.dashboards import write_report

    if args.out.is_dir():  # say so before the queries, not after
        raise UsageError(f"-o {args.out} is a directory: give the HTML file to write, e.g. "
                         f"{args.out / 'report.html'}")
    variables = {k: v for k, v in (("model", args.model), ("version", args.model_version),
                                   ("instance", args.instance)) if v}
    summary = write_report(args.prometheus, args.out, minutes=args.minutes, step_s=args.step,
                           variables=variables, rate_interval=args.rate_interval)
    print(f"report: {summary.path} ({summary.with_data}/{summary.panels} panels with data)")
    for where in summary.empty:
        print(f"  no data: {where}")
    for err in summary.errors:
        print(f"  query error: {err}", file=sys.stderr)
    return ExitCode.OK
