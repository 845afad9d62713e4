"""The dashboards' structure: units, queries, variables, layout; `grafana generate|check`.

The committed grafana/dashboards/ copies are checked with the rest of the export
(tests/deploy/test_export.py); here the generator's own output is inspected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchwatch import assets, rules
from benchwatch.cli import grafana as grafana_cmd
from benchwatch.grafana import boards as dashboards
from probes import metric_names as m

BOARDS = dashboards.render_files()


def _grafana(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchwatch", "grafana", *args],
                          capture_output=True, text=True, timeout=60)


def test_generate_then_check(tmp_path: Path) -> None:
    out = _grafana("generate", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == BOARDS
    assert grafana_cmd.check(tmp_path) == []
    ok = _grafana("check", "-d", str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "benchwatch-drift.json").write_text("{}")
    (tmp_path / "old-board.json").write_text("{}")
    assert grafana_cmd.check(tmp_path) == [
        "benchwatch-drift.json: differs from the generator",
        "old-board.json: not produced by the generator (remove it)"]
    bad = _grafana("check", "-d", str(tmp_path / "nothing-here"))
    assert bad.returncode == 1 and "missing" in bad.stderr


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_has_unit_query_datasource(name: str) -> None:
    board = json.loads(BOARDS[name])
    assert board["uid"] and board["title"] and board["panels"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "model", "version", "instance"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"]["uid"] == "${datasource}"
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]


def test_no_overlapping_panels() -> None:
    for d in dashboards.all_dashboards():
        cells: set[tuple[int, int]] = set()
        for p in dashboards.to_grafana(d)["panels"]:
            g = p["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{d.title}: {p['title']} overlaps"
            cells |= mine


def test_required_content_is_there() -> None:
    """The issue's list: overview, GPU & energy, outputs, drift, canary; baseline lines."""
    boards = {d.uid: d for d in dashboards.all_dashboards()}
    assert set(boards) >= {"benchwatch-overview", "benchwatch-gpu-energy", "benchwatch-outputs",
                           "benchwatch-drift", "benchwatch-canary", "benchwatch-scorecard"}
    exprs = "\n".join(e.expr for e in dashboards.expressions())
    for needle in (*(f"model_version:benchwatch_inference_latency_p{p}_seconds:rate5m"
                     for p in (50, 90, 99)),
                   "model_version:benchwatch_inference_error_ratio:rate5m", m.IN_FLIGHT,
                   "model_version:benchwatch_inference_energy_per_inference_joules:rate5m",
                   m.DRIFT_SCORE, m.DRIFT_THRESHOLD, m.CANARY_VERDICT, "ALERTS{",
                   'figure="latency_p99_s"', 'figure="energy_per_inference_j"'):
        assert needle in exprs, needle
    kinds = {p.kind for d in boards.values() for p in d.panels}
    assert "heatmap" in kinds
    latency = next(p for p in boards["benchwatch-overview"].panels if "p99" in p.title)
    assert any(q.reference for q in latency.queries)
    assert latency.unit == "s"


# what a panel may compute itself: nothing that depends on the histogram kind or the export path
COMPUTED = re.compile(r"histogram_|_bucket\b|_count\b|_sum\b| or |/")
RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")


def test_panels_read_recorded_series() -> None:
    """Quantiles, means, ratios and path-dependent names live in the recording rules only (one
    figure for dashboards and alerts, whatever histogram kind arrives); panels read the
    recorded series, or plain gauges and counter rates, which are the same on every path. The
    heatmap alone reads buckets: it draws them (recording them would store them twice)."""
    computed = [f"{d.title} / {p.title}: {q.expr}" for d in dashboards.all_dashboards()
                for p in d.panels if p.kind != "heatmap" for q in p.queries
                if COMPUTED.search(q.expr)]
    assert computed == []
    assert COMPUTED.search(next(p for p in dashboards.overview().panels
                                if p.kind == "heatmap").queries[0].expr)


def test_every_recorded_series_a_panel_reads_is_recorded() -> None:
    recorded = {r["record"] for f in rules.rule_files()
                for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "record" in r}
    read = {name for e in dashboards.expressions() for name in RECORDED.findall(e.expr)}
    assert len(read) > 25
    assert read - recorded == set()


def test_panel_model_refuses_incomplete_panels() -> None:
    with pytest.raises(ValueError, match="no query"):
        dashboards.Panel("x", "timeseries", "s", (), "d")
    with pytest.raises(ValueError, match="no unit"):
        dashboards.Panel("x", "timeseries", "", (dashboards.Query("up"),), "d")
    with pytest.raises(ValueError, match="unknown kind"):
        dashboards.Panel("x", "pie", "s", (dashboards.Query("up"),), "d")


def test_substitute_like_grafana_all() -> None:
    expr = 'rate(x{model=~"$model", model_version=~"${version}"}[$__rate_interval])'
    assert dashboards.substitute(expr) == 'rate(x{model=~".*", model_version=~".*"}[1m])'
    one = dashboards.substitute(expr, {"model": "digits.v2"}, rate_interval="15s")
    assert one == r'rate(x{model=~"digits\\.v2", model_version=~".*"}[15s])'


def test_provisioning_points_at_the_dashboards() -> None:
    ds = yaml.safe_load(assets.read_text("grafana/provisioning/datasources/benchwatch.yaml"))
    uids = {d["uid"] for d in ds["datasources"]}
    assert dashboards.DATASOURCE_UID in uids
    dash = yaml.safe_load(assets.read_text("grafana/provisioning/dashboards/benchwatch.yaml"))
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
