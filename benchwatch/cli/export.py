"""`benchwatch export`: write the deployment files this installation ships.

Under the output directory: deploy/ (Prometheus config, rules and their promtool tests,
Alertmanager config and its compose/k8s variant, the OpenTelemetry Collector config, the
Kubernetes ConfigMaps) and grafana/ (provisioning and the dashboards' JSON). A repository
checkout commits `benchwatch export -o .`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write the deployment files (Prometheus rules, configs, dashboards) into a directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=Path, default=Path("."),
                        help="directory to write deploy/ and grafana/ into (default: the "
                             "current directory); existing files there are overwritten")


def run(args: argparse.Namespace) -> int:
    from benchwatch import deploy

    for path in deploy.export(args.out):
        print(path)
    return 0
