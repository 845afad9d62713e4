"""The deployment files benchwatch ships: the sources of truth, installed with the package.

Laid out as `benchwatch export` writes them: `deploy/prometheus/` (alerting and recording rules,
their promtool unit tests in `tests/`), `deploy/alertmanager/`, `deploy/prometheus.yml`,
`deploy/otel-collector.yaml` and `grafana/provisioning/`. A repository checkout's `deploy/` and
`grafana/` copies are exported from here (`benchwatch export -o .`); edit these.

Read them only through this module: `importlib.resources` finds them in a wheel or a zip as well
as in a source checkout, where a path built from `__file__` would not.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# the top-level folders of the export (this package's own module files are not assets)
TOP_LEVEL = ("deploy", "grafana")


def asset(relpath: str) -> Traversable:
    """One packaged file or folder, by its '/'-separated path, e.g. 'deploy/prometheus.yml'."""
    node = files("benchwatch") / "assets"
    for part in relpath.split("/"):
        node = node / part
    if not node.is_file() and not node.is_dir():
        raise FileNotFoundError(f"benchwatch ships no asset {relpath!r} (broken install?)")
    return node


def read_text(relpath: str) -> str:
    return asset(relpath).read_text(encoding="utf-8")


def walk(relpath: str | None = None) -> list[tuple[str, Traversable]]:
    """(path, file) for every packaged file under `relpath` (default: all of them), sorted."""
    out: list[tuple[str, Traversable]] = []
    stack = [(top, asset(top)) for top in ((relpath,) if relpath else TOP_LEVEL)]
    while stack:
        rel, node = stack.pop()
        if node.is_file():
            out.append((rel, node))
        else:
            stack.extend((f"{rel}/{child.name}", child) for child in node.iterdir()
                         if child.name != "__pycache__")
    return sorted(out, key=lambda item: item[0])


def copy(relpath: str, dest: Path) -> Path:
    """Write the packaged files under `relpath` to `dest`/`relpath` (same layout, real files for
    tools that need paths: promtool, Prometheus); returns `dest`/`relpath`."""
    for rel, node in walk(relpath):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(node.read_bytes())
    return dest / relpath
