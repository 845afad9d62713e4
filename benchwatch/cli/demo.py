"""`benchwatch demo`: the whole product end to end on embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchwatch.cli._values import number, whole
from benchwatch.cli.errors import ExitCode

HELP = "run the whole product end to end on embedded defaults"

PORT_OPTIONS = (("port", "model", 8000, "the example model's HTTP server"),
                ("metrics-port", "metrics", 9464, "the model server's probe endpoint"),
                ("drift-port", "drift", 9462, "the drift service's Prometheus endpoint"),
                ("prometheus-port", "prometheus", 9090, "Prometheus (when installed)"),
                ("alertmanager-port", "alertmanager", 9093, "Alertmanager (when installed)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=120.0, metavar="S",
                        help="seconds of traffic (default 120)")
    parser.add_argument("--drift-at", type=float, default=40.0, metavar="S",
                        help="second at which the traffic starts drifting (default 40)")
    parser.add_argument("--no-prometheus", action="store_true",
                        help="don't start Prometheus/Alertmanager (drift is still shown)")
    for flag, _, default, what in PORT_OPTIONS:
        parser.add_argument(f"--{flag}", type=int, default=default, metavar="PORT",
                            help=f"{what} (default {default}; 0 = any free port; a taken "
                                 "port falls back to a free one)")
    parser.add_argument("--rate", type=float, default=None, metavar="QPS",
                        help="requests per second the demo sends (default 200 for digits, "
                             "40 for lm)")
    parser.add_argument("--interval", type=number(0, 3600, unit="seconds"), default=2.0, metavar="S",
                        help="drift evaluation interval (default 2)")
    parser.add_argument("-o", "--out", "--workdir", dest="workdir", type=Path, default=None,
                        help="where baselines, the spool, each process's log (logs/), "
                             "summary.json and the report go (default ./runs/demo-<time>)")
    parser.add_argument("--plain", action="store_true",
                        help="plain progress lines instead of the live panel")
    parser.add_argument("--seed", type=whole(0, 2**64 - 1), default=0)
    parser.add_argument("--model", choices=("digits", "lm"), default="digits",
                        help="digits: the example classifier (default); lm: the example "
                             "character-level language model, tokens streamed, TTFT/TPOT")


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch.demo.session import DemoConfig, run_demo

    cfg = DemoConfig(
        duration_s=args.duration, drift_at_s=args.drift_at, prometheus=not args.no_prometheus,
        ports={key: getattr(args, flag.replace("-", "_")) for flag, key, _, _ in PORT_OPTIONS},
        rate_qps=args.rate, eval_interval_s=args.interval, workdir=args.workdir,
        live=False if args.plain else None, seed=args.seed, model=args.model)
    return ExitCode(run_demo(cfg).exit_code)  # run_demo validates cfg first (DemoConfig.validate)
