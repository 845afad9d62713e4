"""The generative-models dashboard: registered (JSON, push, report), what it draws, and where
its baselines come from. Every one of its expressions is run against a real Prometheus fed by a
probed generator in tests/grafana/test_promql.py and rendered by test_report.py."""

from __future__ import annotations

import json

from benchwatch.grafana import boards as dashboards
from benchwatch.grafana.genai import GENAI_VARIABLES, generative
from probes import metric_names as m


def test_it_is_one_of_the_dashboards_and_rendered() -> None:
    assert "benchwatch-generative" in {d.uid for d in dashboards.all_dashboards()}
    board = json.loads(dashboards.render_files()["benchwatch-generative.json"])
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "model", "version", "instance"]
    # models are listed from the token counter: probed streams and vLLM/SGLang mappings alike
    assert all(v.match.startswith(m.GENAI_TOKENS) for v in GENAI_VARIABLES)


def test_panels_read_the_recorded_gen_ai_series_and_like_baselines() -> None:
    d = generative()
    panels = {p.title: p for p in d.panels}
    for title, what in (("Time to first token p50 / p90 / p99 vs baseline", "ttft"),
                        ("Time per output token p50 / p90 / p99 vs baseline", "tpot")):
        p = panels[title]
        hist = {"ttft": m.GENAI_TTFT, "tpot": m.GENAI_TPOT}[what].removesuffix("_seconds")
        live = [q for q in p.queries if not q.reference]
        base = [q for q in p.queries if q.reference]
        # the quantiles genai.rules.yml records from either histogram kind
        assert [q.expr.split("{")[0] for q in live] == [
            f"model_version:{hist}_p{pct}_seconds:rate5m" for pct in (50, 90, 99)]
        # only figures measured where the probe measures (the model call): like with like
        assert [f'figure="{what}_p{pct}_s", point="model_call"' in q.expr
                for pct, q in zip((50, 90, 99), base, strict=True)] == [True] * 3
    energy = panels["Joules per token"]
    assert [q.expr.split("{")[0] for q in energy.queries] == [
        "model_version:benchwatch_genai_energy_per_output_token_joules:rate5m",
        "model_version:benchwatch_genai_energy_per_token_joules:rate5m"]
    drift = panels["Output drift: score vs threshold"]
    assert all(m.GENAI_OUTPUT_FEATURES in q.expr for q in drift.queries)
    assert all(p.no_data for p in d.panels)
