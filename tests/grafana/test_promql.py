"""Every PromQL expression of every dashboard panel, template variable and Prometheus rule
returns data from a real Prometheus that scraped real probes and the real drift service, on
each export path (tests/support/prometheus3.py): the Debian Prometheus 2.42 and Prometheus 3
scraping the probe's classic buckets, and the probe pushing exponential histograms over OTLP to
Prometheus 3 (native histograms) — the same dashboards and rules on all three. Panels on
quantiles, means and ratios read the series the recording rules write (the rules are loaded into
each Prometheus and evaluated every second; the checks wait for them), so a panel returning data
means its rule evaluated on that path.

The failure message names every expression that came back empty (or failed to parse), so a
renamed metric or label in any exporter shows up here with the panel or rule that uses it.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from benchwatch import services
from benchwatch.grafana import boards as dashboards
from benchwatch.rules import rule_files
from probes import metric_names as m
from tests.support.grafana_stack import MODEL, VERSION, Stack
from tests.support.prometheus3 import EXPORTS

pytestmark = [pytest.mark.prometheus, pytest.mark.parametrize("stack", EXPORTS, indirect=True)]

RATE_INTERVAL = "15s"  # = 15 scrapes at the test's 1 s interval (Grafana: 4 x scrape)
DEADLINE_S = 75.0

# Alerting rules whose condition cannot become true in a short test; their expression is run
# with the final comparison removed instead (so metric and label names are still checked).
CANNOT_FIRE_HERE = {
    "BenchwatchDriftEvaluationStale": "needs a drift service that stopped evaluating 10 min ago",
}
# Alerting rules on series only drift workers consuming Kafka export (this stack has no broker):
# their expressions are unit-tested by promtool (rules_test.yml) and the series are checked
# against a real broker in tests/kafka/test_kafka_metrics.py.
NEEDS_KAFKA = {"BenchwatchKafkaPartitionsUnowned"}
# Rule groups that map metrics of servers benchwatch does not instrument (vLLM, SGLang; none runs
# here) onto the gen_ai_* series: unit-tested by promtool on series in those servers' exposition
# format (genai_test.yml), including the quantile and token rules reading the mapped series.
OTHER_SERVERS = {"benchwatch-genai-vllm", "benchwatch-genai-sglang"}


def _get(prom: services.Prometheus, path: str, params: dict[str, str]) -> Any:
    return services._http_json(f"{prom.url}{path}?{urllib.parse.urlencode(params)}")


def _has_data(prom: services.Prometheus, expr: str, instant: bool = False) -> tuple[bool, str]:
    now = time.time()
    try:
        if instant:
            out = _get(prom, "/api/v1/query", {"query": expr, "time": f"{now:.3f}"})
            return bool(out["data"]["result"]), ""
        out = _get(prom, "/api/v1/query_range", {"query": expr, "start": f"{now - 120:.3f}",
                                                  "end": f"{now:.3f}", "step": "1"})
        # a native-histogram result (the heatmap on the OTLP path) comes as "histograms"
        return any(r.get("values") or r.get("histograms") for r in out["data"]["result"]), ""
    except Exception as exc:  # a 400 for bad PromQL: report it with the expression
        body = getattr(exc, "read", lambda: b"")()
        return False, f"error {exc} {body[:300]!r}"


def _strip_comparison(expr: str) -> str:
    return re.sub(r"\s*(>|<|==|!=|>=|<=)\s*[-+\d.e]+\s*$", "", expr.strip())


def dashboard_checks() -> list[tuple[str, str, bool]]:
    checks = []
    for d in dashboards.all_dashboards():
        for p in d.panels:
            for i, q in enumerate(p.queries):
                checks.append((f"panel {d.title} / {p.title} ({chr(65 + i)})",
                               dashboards.substitute(q.expr, rate_interval=RATE_INTERVAL),
                               q.instant))
    checks.append(("annotation benchwatch alerts",
                   dashboards.substitute(dashboards.ANNOTATION_EXPR), False))
    return checks


def rule_checks() -> list[tuple[str, str, bool]]:
    checks = []
    for name, text in ((f.name, f.read_text()) for f in rule_files()):
        for group in yaml.safe_load(text)["groups"]:
            if group["name"] in OTHER_SERVERS:
                continue
            for rule in group["rules"]:
                expr = rule["expr"].strip()
                if rule.get("alert") in NEEDS_KAFKA:
                    continue
                if "alert" in rule:
                    label = f"rule {name} alert {rule['alert']}"
                    if rule["alert"] in CANNOT_FIRE_HERE:
                        expr = _strip_comparison(expr)
                        label += f" (comparison removed: {CANNOT_FIRE_HERE[rule['alert']]})"
                else:
                    label = f"rule {name} record {rule['record']}"
                checks.append((label, expr, False))
    return checks


def variable_checks(prom: services.Prometheus) -> list[tuple[str, Callable[[], bool]]]:
    out = []
    # the shared variables and those of dashboards with their own (generative: gen_ai series)
    every = dict.fromkeys([*dashboards.VARIABLES, *(v for d in dashboards.all_dashboards() for v in d.variables)])
    for v in every:
        match = dashboards.substitute(v.match)

        def run(v: dashboards.Variable = v, match: str = match) -> bool:
            got = _get(prom, f"/api/v1/label/{v.target_label}/values", {"match[]": match})
            return bool(got["data"])

        out.append((f"variable {v.name}: {v.query}", run))
    return out


def test_every_dashboard_and_rule_expression_returns_data(stack: Stack) -> None:
    prom = stack.prometheus
    checks = dashboard_checks() + rule_checks()
    assert len(checks) > 40
    pending = {label: (expr, instant) for label, expr, instant in checks}
    variables = dict(variable_checks(prom))
    errors: dict[str, str] = {}
    deadline = time.monotonic() + DEADLINE_S
    while (pending or variables) and time.monotonic() < deadline:
        for label, (expr, instant) in list(pending.items()):
            ok, err = _has_data(prom, expr, instant)
            if ok:
                del pending[label]
                errors.pop(label, None)
            elif err:
                errors[label] = err
        for label, run in list(variables.items()):
            if run():
                del variables[label]
        if pending or variables:
            time.sleep(2)
    lines = [f"- {label}\n    {expr}" + (f"\n    {errors[label]}" if label in errors else "")
             for label, (expr, _) in sorted(pending.items())]
    lines += [f"- {label}" for label in sorted(variables)]
    assert not lines, (f"{len(lines)} of {len(checks) + len(variable_checks(prom))} expressions "
                       f"returned no data after {DEADLINE_S:.0f}s:\n" + "\n".join(lines))


def test_single_model_selection_narrows(stack: Stack) -> None:
    """Grafana substitutes a selected value as a regex: an exact model keeps data, another
    model gets none (the filters really apply)."""
    overview = dashboards.overview()
    expr = overview.panels[0].queries[0].expr
    ok, _ = _has_data(stack.prometheus, dashboards.substitute(expr, {"model": MODEL}, "15s"))
    assert ok
    ok, _ = _has_data(stack.prometheus, dashboards.substitute(expr, {"model": "nope"}, "15s"))
    assert not ok


def test_latency_quantiles_are_seconds(stack: Stack) -> None:
    """The probed function sleeps >= 1 ms: p50 must read in milliseconds, not ms-as-seconds."""
    panel = next(p for p in dashboards.overview().panels if p.title.startswith("Latency p50"))
    # only this module's model and version: probes decorated by earlier tests in the same
    # process keep exporting (by design: decorators run before configure) with no traffic now,
    # and their quantiles read NaN
    q = dashboards.substitute(panel.queries[0].expr, {"model": MODEL, "version": VERSION}, "15s")
    result = stack.prometheus.wait_for(q, timeout_s=30)
    p50 = float(result[0]["value"][1])
    assert 0.001 <= p50 < 0.05, p50


def test_alerts_fire_and_a_wrong_name_finds_nothing(stack: Stack) -> None:
    """Controls for the test above: the rules really are loaded and evaluated (every alert
    that can fire here is firing), and a misspelled metric really returns no data."""
    expected = set()
    for text in (f.read_text() for f in rule_files()):
        for group in yaml.safe_load(text)["groups"]:
            expected |= {r["alert"] for r in group["rules"] if "alert" in r}
    expected -= set(CANNOT_FIRE_HERE) | NEEDS_KAFKA
    assert expected
    deadline = time.monotonic() + 60
    firing: set[str] = set()
    while time.monotonic() < deadline:
        firing = {r["metric"]["alertname"]
                  for r in stack.prometheus.query('ALERTS{alertstate="firing"}')}
        if expected <= firing:
            break
        time.sleep(1)
    assert expected <= firing, f"not firing: {sorted(expected - firing)}"
    ok, _ = _has_data(stack.prometheus, "benchwatch_inference_duration_second_count")
    assert not ok
    # every rule evaluates cleanly, and the firing alerts' annotation templates expand
    groups = services._http_json(f"{stack.prometheus.url}/api/v1/rules")["data"]["groups"]
    unhealthy = [f"{r['name']}: {r.get('lastError')}" for g in groups for r in g["rules"]
                 if r.get("health") != "ok"]
    assert not unhealthy, unhealthy
    alerts = services._http_json(f"{stack.prometheus.url}/api/v1/alerts")["data"]["alerts"]
    broken = [f"{a['labels']['alertname']} {k}: {v}" for a in alerts
              for k, v in a.get("annotations", {}).items() if "error" in v.lower()]
    assert not broken, broken


def test_error_panels_read_zero_for_a_model_serving_without_errors(stack: Stack) -> None:
    """Zero is zero: a model with traffic and no errors has no errors series at all (the
    counter's series appears with the first exception), yet its error-ratio and errors-per-
    second panels read 0, not "no data"; the stack's model, which raises, reads above 0."""
    from probes import probe

    quiet = "quiet"

    @probe(model=quiet, version="v1", outputs=None)
    def serve(x: float) -> float:
        return x

    stop = threading.Event()

    def drive() -> None:
        while not stop.wait(0.005):
            serve(1.0)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        panels = {p.title: p for p in dashboards.overview().panels}
        for title in ("Errors per second by type", "Error ratio"):
            expr = panels[title].queries[0].expr
            got = stack.prometheus.wait_for(
                dashboards.substitute(expr, {"model": quiet}, RATE_INTERVAL), timeout_s=60)
            assert [float(r["value"][1]) for r in got] == [0.0], (title, got)
            raising = stack.prometheus.wait_for(
                dashboards.substitute(expr, {"model": MODEL, "version": VERSION}, RATE_INTERVAL),
                timeout_s=30)
            assert all(float(r["value"][1]) > 0 for r in raising), (title, raising)
        assert stack.prometheus.query(f'{m.ERRORS}{{model="{quiet}"}}') == []
    finally:
        stop.set()
        driver.join(timeout=10)
