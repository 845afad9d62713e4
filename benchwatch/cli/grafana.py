"""`benchwatch grafana generate|check|push`: dashboards as code.

generate  write the dashboards' JSON (default: grafana/dashboards/ of this checkout)
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

from benchwatch import deploy
from benchwatch.grafana import boards as dashboards

log = logging.getLogger(__name__)

HELP = "generate dashboards or push them to a Grafana server"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
FOLDER_UID = "benchwatch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write the dashboards' JSON files")
    gen.add_argument("-o", "--out", type=Path, default=DEFAULT_DIR,
                     help=f"output directory (default {DEFAULT_DIR})")
    gen.add_argument("--k8s", default=None,
                     help="also write the Kubernetes ConfigMaps of the stack's config files "
                          "here (default: deploy/k8s/configmaps.generated.yaml, and "
                          "deploy/stack/alertmanager.yml, when -o is this checkout's "
                          "grafana/dashboards); '' to skip")
    chk = sub.add_parser("check", help="fail when committed JSON differs from the generator")
    chk.add_argument("-d", "--dir", type=Path, default=DEFAULT_DIR)
    chk.add_argument("--k8s", default=str(deploy.DEFAULT_PATH))
    push = sub.add_parser("push", help="publish the dashboards to a Grafana server")
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL"),
                      help="Grafana base URL, e.g. http://127.0.0.1:3000 (default $GRAFANA_URL)")
    push.add_argument("--token", default=None,
                      help="service-account token (default $GRAFANA_TOKEN; or user:password "
                           "in the URL)")
    push.add_argument("--folder", default="benchwatch", help="folder title (created if missing)")
    push.add_argument("--datasource-uid", default=None,
                      help="Prometheus datasource uid on that server (default: the dashboards' "
                           f"{dashboards.DATASOURCE_UID!r}, or Grafana's default datasource)")


def check(directory: Path, k8s: Path | None = None) -> list[str]:
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
    if k8s is not None:
        for path, text in ((k8s, deploy.render()), (deploy.STACK_ALERTMANAGER,
                                                           deploy.stack_alertmanager())):
            if not path.exists() or path.read_text() != text:
                problems.append(f"{path}: differs from the generator")
    return problems


def push(url: str, token: str | None, folder: str = "benchwatch",
         datasource_uid: str | None = None, client: Any | None = None) -> list[str]:
    """Create/overwrite every dashboard in `folder`; returns the URLs Grafana reports."""
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


def run(args: argparse.Namespace) -> int:
    if args.action == "generate":
        for path in dashboards.write_files(args.out):
            print(path)
        k8s = args.k8s
        if k8s is None and args.out.resolve() == DEFAULT_DIR and (DEFAULT_DIR.parents[1] /
                                                                   "deploy").is_dir():
            k8s = str(deploy.DEFAULT_PATH)
        if k8s:
            print(deploy.write_stack_alertmanager())
            print(deploy.write(Path(k8s)))
        return 0
    if args.action == "check":
        problems = check(args.dir, Path(args.k8s) if args.k8s else None)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("run `benchwatch grafana generate` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    if not args.url:
        print("benchwatch grafana push: give --url (or set GRAFANA_URL), e.g. "
              "--url http://127.0.0.1:3000", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    try:
        for u in push(args.url, token, args.folder, args.datasource_uid):
            print(u)
    except Exception as exc:  # noqa: BLE001 (a CLI edge: report, don't trace)
        print(f"benchwatch grafana push to {args.url} failed: {type(exc).__name__}: {exc}\n"
              "check the URL and that the token is a service-account token with the Editor "
              "role", file=sys.stderr)
        return 1
    return 0
