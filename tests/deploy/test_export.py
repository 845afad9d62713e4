"""The repository's deploy/ and grafana/ copies are `benchwatch export -o .`, byte for byte.

The sources are packaged (benchwatch/assets, benchwatch/grafana/boards.py); the checkout's copies
are generated output, committed so compose and kustomize can mount them. Verbs that write files
write where they are told (or under the working directory), never into the installation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchwatch import deploy
from tests.support.deploy_ports import ROOT

REGENERATE = "edit benchwatch/assets/ (or the dashboards' code), then run `benchwatch export -o .`"
# folders whose every file is exported (deploy/ and deploy/k8s also hold hand-written files)
EXPORTED_ONLY = ("deploy/prometheus", "deploy/alertmanager", "deploy/stack", "grafana")


def _benchwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchwatch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_committed_copies_equal_the_export(tmp_path: Path) -> None:
    out = _benchwatch("export", "-o", str(tmp_path / "x"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = _files(tmp_path / "x")
    assert exported == set(deploy.export_files())
    assert {"deploy/prometheus/alerts.rules.yml", "deploy/prometheus/tests/rules_test.yml",
            deploy.K8S_CONFIGMAPS, deploy.STACK_ALERTMANAGER,
            "grafana/dashboards/benchwatch-overview.json"} <= exported
    stale = [rel for rel in sorted(exported)
             if not (ROOT / rel).is_file()
             or (ROOT / rel).read_bytes() != (tmp_path / "x" / rel).read_bytes()]
    assert not stale, f"stale or missing: {', '.join(stale)}; {REGENERATE}"
    extra = sorted(rel for top in EXPORTED_ONLY for rel in
                   (f"{top}/{r}" for r in _files(ROOT / top)) if rel not in exported)
    assert not extra, f"not produced by `benchwatch export` (remove them): {', '.join(extra)}"


def test_export_defaults_to_the_working_directory(tmp_path: Path) -> None:
    out = _benchwatch("export", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _files(tmp_path) == set(deploy.export_files())


def test_grafana_generate_writes_only_where_told(tmp_path: Path) -> None:
    out = _benchwatch("grafana", "generate", "-o", str(tmp_path / "gx"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _files(tmp_path) == {f"gx/{Path(rel).name}" for rel in deploy.export_files()
                                if rel.startswith(deploy.DASHBOARDS + "/")}
    default = _benchwatch("grafana", "generate", cwd=tmp_path / "gx")
    assert default.returncode == 0, default.stderr
    assert _files(tmp_path / "gx" / "grafana" / "dashboards") == \
        {Path(rel).name for rel in deploy.export_files() if rel.startswith(deploy.DASHBOARDS)}
