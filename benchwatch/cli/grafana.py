"""`benchwatch grafana generate|check|push`: dashboards as code.

generate  write the dashboards' JSON (default: ./grafana/dashboards; `benchwatch export` writes
          them with the rest of the deployment files)
check     exit 1 when the JSON files in a directory differ from what the generator makes
push      publish them to a running Grafana with grafana-client (token from --token or
          GRAFANA_TOKEN), into a folder, overwriting earlier versions with the same uid
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from benchwatch.cli._secrets import add_secret, secret
from benchwatch.cli._values import http_url
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError
from benchwatch.grafana import boards as dashboards
from benchwatch.services import ServiceError
from probes.errors import require

log = logging.getLogger(__name__)

HELP = "generate dashboards or push them to a Grafana server"
DEFAULT_DIR = Path("grafana") / "dashboards"  # relative to the working directory
FOLDER_UID = "benchwatch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write the dashboards' JSON files")
    gen.add_argument("-o", "--out", type=Path, default=DEFAULT_DIR,
                     help=f"output directory (default ./{DEFAULT_DIR})")
    chk = sub.add_parser("check", help="fail when committed JSON differs from the generator")
    chk.add_argument("-d", "--dir", type=Path, default=DEFAULT_DIR,
                     help=f"directory of the JSON files (default ./{DEFAULT_DIR})")
    push = sub.add_parser("push", help="publish the dashboards to a Grafana server")
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL"),
                      help="Grafana base URL, e.g. http://127.0.0.1:3000 (default $GRAFANA_URL)")
    add_secret(push, "--token", "GRAFANA_TOKEN",
               "service-account token (default $GRAFANA_TOKEN; or user:password in the URL)")
    push.add_argument("--folder", default="benchwatch", help="folder title (created if missing)")
    push.add_argument("--datasource-uid", default=None,
                      help="Prometheus datasource uid on that server (default: the dashboards' "
                           f"{dashboards.DATASOURCE_UID!r}, or Grafana's default datasource)")


def check(directory: Path) -> list[str]:
    """Names of files that are missing, stale or unexpected in `directory`."""
    want = dashboards.render_files()
    problems = []
    for name, text in want.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text() != text:
            problems.append(f"{name}: differs from the generator")
    for path in sorted(directory.glob("*.json")):
        if path.name not in want:
            problems.append(f"{path.name}: not produced by the generator (remove it)")
    return problems


def push(url: str, token: str | None, folder: str = "benchwatch",
         datasource_uid: str | None = None, client: Any | None = None) -> list[str]:
    """Create/overwrite every dashboard in `folder`; returns the URLs Grafana reports."""
    require("grafana_client", "grafana", "pushing dashboards to Grafana")
    if client is None:
        from grafana_client.api import GrafanaApi

        client = GrafanaApi.from_url(url, credential=token)
    from grafana_client.client import GrafanaClientError

    try:
        client.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        client.folder.create_folder(folder, uid=FOLDER_UID)
    urls = []
    for d in dashboards.all_dashboards():
        model = dashboards.to_grafana(d)
        if datasource_uid:
            for var in model["templating"]["list"]:
                if var["name"] == "datasource":
                    var["current"] = {"text": datasource_uid, "value": datasource_uid}
        resp = client.dashboard.update_dashboard({
            "dashboard": model, "folderUid": FOLDER_UID, "overwrite": True,
            "message": "benchwatch grafana push",
        })
        urls.append(str(resp.get("url", d.uid)))
        log.info("pushed %s -> %s", d.uid, resp.get("url"))
    return urls


def run(args: argparse.Namespace) -> ExitCode:
    if args.action == "generate":
        for path in dashboards.write_files(args.out):
            print(path)
        return ExitCode.OK
    if args.action == "check":
        problems = check(args.dir)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"run `benchwatch grafana generate -o {args.dir}`", file=sys.stderr)
            return ExitCode.FINDING
        return ExitCode.OK
    if not args.url:
        raise UsageError("give --url (or set GRAFANA_URL), e.g. --url http://127.0.0.1:3000")
    try:
        http_url(args.url)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--url: {exc}") from None
    require("grafana_client", "grafana", "pushing dashboards to Grafana")
    from grafana_client.client import GrafanaException

    token = secret(args, "--token", "GRAFANA_TOKEN")
    try:
        urls = push(args.url, token, args.folder, args.datasource_uid)
    except (GrafanaException, OSError) as exc:
        raise ServiceError(f"push to {args.url} failed ({type(exc).__name__}: {exc}); check the "
                           "URL and that the token is a service-account token with the Editor "
                           "role") from exc
    for u in urls:
        print(u)
    return ExitCode.OK
