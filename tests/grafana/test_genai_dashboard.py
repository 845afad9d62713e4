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


def test_panels_read_the_gen_ai_series_and_like_baselines() -> None:
    d = generative()
    panels = {p.title: p for p in d.panels}
    for title, hist, figure in (("Time to first token p50 / p90 / p99 vs baseline", m.GENAI_TTFT, "ttft"),
                                ("Time per output token p50 / p90 / p99 vs baseline", m.GENAI_TPOT, "tpot")):
        p = panels[title]
        live = [q for q in p.queries if not q.reference]
        base = [q for q in p.queries if q.reference]
        assert [q.expr.split(",", 1)[0] for q in live] == [f"histogram_quantile({q}" for q in (0.5, 0.9, 0.99)]
        assert all(f"{hist}_bucket" in q.expr for q in live)
        # only figures measured where the probe measures (the model call): like with like
        assert [f'figure="{figure}_p{pct}_s", point="model_call"' in q.expr
                for pct, q in zip((50, 90, 99), base, strict=True)] == [True] * 3
    energy = panels["Joules per token"]
    assert all(m.ENERGY in q.expr and m.GENAI_TOKENS in q.expr for q in energy.queries)
    assert "> 0) or 0 *" in energy.queries[0].expr  # zero is zero while nothing is generated
    drift = panels["Output drift: score vs threshold"]
    assert all(m.GENAI_OUTPUT_FEATURES in q.expr for q in drift.queries)
    assert all(p.no_data for p in d.panels)
