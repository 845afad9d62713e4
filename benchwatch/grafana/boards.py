"""Grafana dashboards as code: the panel model, the benchwatch dashboards, and their JSON.

The same `Dashboard` objects feed three consumers: the JSON files under `grafana/dashboards/`
(`benchwatch export` or `benchwatch grafana generate`), `benchwatch grafana push`, and the
static HTML report (`benchwatch.report.dashboards`), which runs each panel's PromQL against
Prometheus's HTTP API. A test runs every expression here against a real Prometheus fed by real
probes and the drift service, with the packaged rules loaded (most panels read recorded series).

Metric names are the Prometheus translation of the OpenTelemetry names in docs/probes.md, as the
real exporters print them (see `probes.metric_names`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes import metric_names as m

__all__ = [
    "DATASOURCE_UID",
    "Dashboard",
    "Panel",
    "Query",
    "Variable",
    "all_dashboards",
    "expressions",
    "render_files",
    "substitute",
    "to_grafana",
    "write_files",
]

# the dashboard schema of Grafana 11.6, whose types (grafana-foundation-sdk) tests/grafana/
# test_grafana_schema.py round-trips every dashboard through
SCHEMA_VERSION = 41
# Provisioned datasource uid (grafana/provisioning/datasources); panels use the `$datasource`
# variable so a pushed dashboard works with whatever Prometheus datasource the server has.
DATASOURCE_UID = "benchwatch-prometheus"
DS = {"type": "prometheus", "uid": "${datasource}"}

PANEL_KINDS = frozenset({"timeseries", "heatmap", "stat", "table", "state-timeline", "bargauge"})


@dataclass(frozen=True)
class Query:
    """One PromQL target. `reference=True` marks a baseline line (drawn dashed, not filled);
    `missing` is what the report says when this query finds nothing (e.g. no baseline figure
    at the live figure's measurement point)."""

    expr: str
    legend: str = ""
    reference: bool = False
    instant: bool = False
    heatmap: bool = False
    missing: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str
    unit: str
    queries: tuple[Query, ...]
    description: str
    width: int = 12
    height: int = 8
    # value -> text, for gauges that encode an outcome (canary verdict, drift detected)
    mappings: tuple[tuple[float, str, str], ...] = ()
    min: float | None = None
    max: float | None = None
    # Why the panel can be empty with everything working (no GPU, no canary run, nothing
    # drifting): `benchwatch report` shows it in place of a bare "no data". A rate or ratio
    # reads 0, not empty, when nothing happened (the recording rules), so "no data" means no
    # series.
    no_data: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PANEL_KINDS:
            raise ValueError(f"panel {self.title!r}: unknown kind {self.kind!r}; use one of "
                             f"{sorted(PANEL_KINDS)}")
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query; every panel needs one")
        if not self.unit:
            raise ValueError(f"panel {self.title!r} has no unit; give a Grafana unit id")


@dataclass(frozen=True)
class Variable:
    """A query template variable: `label_values(<match>, <label>)`, multi-select with All."""

    name: str
    label: str
    match: str
    target_label: str

    @property
    def query(self) -> str:
        return f"label_values({self.match}, {self.target_label})"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = ("benchwatch",)
    variables: tuple[Variable, ...] = field(default_factory=lambda: VARIABLES)
    no_data: str = ""  # the reason for its panels that give none of their own (Panel.no_data)

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


# --- template variables and label filters -------------------------------------------------
# the in-flight gauge: one series per probed model and version on every export path (the
# latency histogram has no `_count` series when it arrives as a native histogram)
VARIABLES: tuple[Variable, ...] = (
    Variable("model", "model", m.IN_FLIGHT, "model"),
    Variable("version", "version", f'{m.IN_FLIGHT}{{model=~"$model"}}', "model_version"),
    Variable("instance", "instance",
             f'{m.IN_FLIGHT}{{model=~"$model", model_version=~"$version"}}', "instance"),
)
# probe series carry the serving process's `instance`; drift/canary series come from other
# processes, so they are filtered by model and version only.
SEL = 'model=~"$model", model_version=~"$version", instance=~"$instance"'
SEL_MV = 'model=~"$model", model_version=~"$version"'
BY = "model, model_version"
RATE = "$__rate_interval"


# Every quantile, mean and ratio, and every figure whose series differ by export path (classic
# buckets on pull, one native histogram over OTLP into Prometheus 3; the OTLP name of GPU
# utilization), is computed by the recording rules (deploy/prometheus/*.rules.yml), which read
# whichever kind exists: the panels read the recorded series, so dashboards and alerts show the
# same figure on every path. Recorded series are per model and version (or per device) over
# 5 minutes, so `$instance` and `$__rate_interval` apply only to panels on plain gauges and
# counter rates, which are the same series on every path.
def _recorded(name: str, sel: str = SEL_MV) -> str:
    return f"{name}{{{sel}}}"


# Reasons a panel can be empty with nothing broken (Panel.no_data).
NO_GPU = "no GPU on the probed hosts (the probe's sampler found no NVML device, or gpu=off)"
NO_ENERGY = ("no energy source on the probed hosts (no NVML GPU and no readable RAPL counter), "
             "so there is nothing to attribute")
NO_DRIFT_SERVICE = ("no drift service scraped, or it has no baseline for this model and version "
                    "(`benchwatch drift serve --baselines DIR`)")
NO_CANARY = ("no canary run: `benchwatch replay --metrics-port PORT` exports its verdict while "
             "it runs")
NO_CALLS = "no inferences in the window: a quantile or mean of no calls is undefined, not 0"
NO_CLASSES = ("no classifier outputs: the probe summarizes outputs it reads as class "
              "probabilities (outputs=\"auto\" or \"classifier\")")


NO_BASELINE_AT_POINT = "no baseline figure at this measurement point"
BASELINE_FIGURE = "model_version:benchwatch_baseline_figure:max"  # by figure, point, scenario


def _baseline(figure: str, legend: str, point: str = "model_call") -> Query:
    """The baseline's figure measured where the live panel's figure is (`point`: the probe
    around the model call for latency and energy, the outputs for accuracy), one line per
    bench scenario; never a figure from another point."""
    return Query(_recorded(BASELINE_FIGURE, f'{SEL_MV}, figure="{figure}", point="{point}"'),
                 f"baseline {legend} {{{{scenario}}}} {{{{model}}}} {{{{model_version}}}}",
                 reference=True, missing=f"{legend}: {NO_BASELINE_AT_POINT} ({point})")


MV = "{{model}} {{model_version}}"


# --- the dashboards -------------------------------------------------------------------------
def overview() -> Dashboard:
    latency = tuple(
        Query(_recorded(f"model_version:benchwatch_inference_latency_p{p}_seconds:rate5m"),
              f"p{p} {MV}") for p in (50, 90, 99)
    ) + tuple(_baseline(f"latency_p{p}_s", f"p{p}") for p in (50, 90, 99))
    return Dashboard(
        uid="benchwatch-overview",
        title="benchwatch / overview",
        description="Traffic, errors and latency per model and version against the benchmark "
                    "baseline's figures.",
        panels=(
            Panel("Requests per second", "timeseries", "reqps",
                  (Query(_recorded("model_version:benchwatch_inference_requests:rate5m"), MV),),
                  "Completed inferences per second (ok and error)."),
            Panel("Errors per second by type", "timeseries", "reqps",
                  (Query(_recorded("model_version_error_type:benchwatch_inference_errors:rate5m"),
                         f"{MV} {{{{error_type}}}}"),),
                  "Exceptions raised by the served function, by exception type (0 for a model "
                  "serving without errors)."),
            Panel("Error ratio", "timeseries", "percentunit",
                  (Query(_recorded("model_version:benchwatch_inference_error_ratio:rate5m"), MV),),
                  "Errors over all completed inferences (0 with no errors, or no calls).",
                  min=0),
            Panel("In flight", "timeseries", "short",
                  (Query(f"sum by ({BY}) ({m.IN_FLIGHT}{{{SEL}}})", MV),),
                  "Inferences running right now (summed over workers).", min=0),
            Panel("Latency p50 / p90 / p99 vs baseline", "timeseries", "s", latency,
                  "Live quantiles from the probe's histogram; dashed lines are the benchmark "
                  "baseline's figures for the same model and version measured at the same point "
                  "(the probe around the model call), one per bench scenario. No dashed line: "
                  "the baseline has no figure at that point (rebuild it with benchwatch bench "
                  "--probe-metrics).", width=24, height=9, no_data=NO_CALLS),
            # ad hoc on purpose: the heatmap draws the buckets themselves, which a recording rule
            # would store again (118 series per model version on the pull path), and it reads
            # either histogram kind itself
            Panel("Latency heatmap", "heatmap", "s",
                  (Query(f"sum by (le) (rate({m.LATENCY_BUCKET}{{{SEL}}}[{RATE}])) or "
                         f"sum (rate({m.LATENCY}{{{SEL}}}[{RATE}]))", "{{le}}", heatmap=True),),
                  "Distribution of inference latency over time (histogram buckets).",
                  width=24, height=9),
            Panel("Mean batch size", "timeseries", "short",
                  (Query(_recorded("model_version:benchwatch_inference_batch_size_mean:rate5m"), MV),),
                  "Average items per call, from the batch-size histogram.", no_data=NO_CALLS),
            Panel("Sample queue drops per second", "timeseries", "short",
                  (Query(f"sum by (instance) (rate({m.DROPPED}{{instance=~\"$instance\"}}[{RATE}]))",
                         "{{instance}}"),),
                  "Drift samples dropped because the probe's bounded queue was full."),
            Panel("Probe faults per second", "timeseries", "short",
                  (Query(f"sum by (instance, fault) (rate({m.FAULTS}{{instance=~\"$instance\"}}"
                         f"[{RATE}]))", "{{instance}} {{fault}}"),),
                  "Faults inside the probe (unreadable outputs, sink or exporter errors): "
                  "counted and logged once, never raised into the served call.", width=24,
                  height=6),
        ),
    )


def gpu_energy() -> Dashboard:
    hw_sel = 'instance=~"$instance"'
    return Dashboard(
        uid="benchwatch-gpu-energy",
        title="benchwatch / GPU and energy",
        no_data=NO_GPU,
        description="GPU power, utilization and memory from the probe's NVML sampler, and "
                    "energy per inference attributed to models.",
        panels=(
            Panel("GPU power", "timeseries", "watt",
                  (Query(f"sum by (instance, hw_id) ({m.HW_POWER}{{{hw_sel}}})",
                         "{{instance}} {{hw_id}}"),),
                  "Board power as NVML reports it (averaged over ~1 s on recent GPUs)."),
            Panel("GPU energy rate", "timeseries", "watt",
                  (Query(f"sum by (instance, hw_id) (rate({m.HW_ENERGY}{{{hw_sel}}}[{RATE}]))",
                         "{{instance}} {{hw_id}}"),),
                  "Average power from NVML's total-energy counter (more faithful than power "
                  "samples)."),
            Panel("Joules per inference", "timeseries", "joule",
                  (Query(_recorded("model_version:benchwatch_inference_energy_per_inference_joules"
                                   ":rate5m"), MV),
                   _baseline("energy_per_inference_j", "J/inference")),
                  "Each sampler interval's energy above the device's idle power, split over the "
                  "requests active in it by busy time; dashed: "
                  "the baseline's figure at the same point (the probe's attribution during the "
                  "bench); none when the baseline has no such figure.", width=24,
                  no_data=NO_ENERGY),
            Panel("Device power: idle and attributed", "timeseries", "watt",
                  (Query(_recorded("instance_hw_id:benchwatch_device_idle_power_watts:rate5m",
                                   hw_sel), "idle {{instance}} {{hw_id}}"),
                   Query(_recorded("instance_hw_id:benchwatch_device_attributed_power_watts:rate5m",
                                   hw_sel), "models {{instance}} {{hw_id}}")),
                  "Each device's energy rate split in two: the idle draw, attributed to no model "
                  "(learned from intervals with no call in flight, or configured), and the energy "
                  "above it, attributed to models. Together they are the device's energy rate.",
                  width=24, no_data=NO_ENERGY),
            Panel("GPU utilization", "timeseries", "percentunit",
                  # recorded from either name: the OTLP path's has `_ratio` (Prometheus adds it
                  # to unit-1 gauges)
                  (Query(_recorded("instance_hw_id:hw_gpu_utilization:max", hw_sel),
                         "{{instance}} {{hw_id}}"),),
                  "Fraction of time a kernel ran (NVML utilization.gpu).", min=0, max=1),
            Panel("GPU memory used", "timeseries", "bytes",
                  (Query(f"max by (instance, hw_id) ({m.HW_MEMORY}{{{hw_sel}}})",
                         "{{instance}} {{hw_id}}"),
                   Query(f"max by (instance, hw_id) ({m.HW_MEMORY_LIMIT}{{{hw_sel}}})",
                         "limit {{instance}} {{hw_id}}", reference=True)),
                  "Device memory in use, against the device's total (dashed)."),
        ),
    )


def outputs() -> Dashboard:
    feat = f'feature=~"{m.OUTPUT_FEATURES}"'
    return Dashboard(
        uid="benchwatch-outputs",
        title="benchwatch / outputs",
        no_data=NO_CLASSES,
        description="What the model says: class mix, confidence and entropy, and how far they "
                    "are from the baseline.",
        panels=(
            Panel("Class mix", "timeseries", "percentunit",
                  (Query(_recorded("model_version_class:benchwatch_output_class_share:rate5m"),
                         f"{MV} class {{{{{m.CLASS_LABEL}}}}}"),),
                  "Share of predictions per class (0 while no predictions).", min=0, max=1,
                  width=24, no_data=NO_CLASSES),
            Panel("Confidence: mean and p10", "timeseries", "percentunit",
                  (Query(_recorded("model_version:benchwatch_output_confidence_mean:rate5m"),
                         f"mean {MV}"),
                   Query(_recorded("model_version:benchwatch_output_confidence_p10:rate5m"),
                         f"p10 {MV}")),
                  "Top-1 probability: mean and the low-confidence tail.", min=0, max=1),
            Panel("Entropy: mean and p90", "timeseries", "short",
                  (Query(_recorded("model_version:benchwatch_output_entropy_mean:rate5m"),
                         f"mean {MV}"),
                   Query(_recorded("model_version:benchwatch_output_entropy_p90:rate5m"),
                         f"p90 {MV}")),
                  "Entropy of the predicted distribution (nats): mean and the uncertain tail.",
                  min=0),
            Panel("Outputs vs baseline: drift score and threshold", "timeseries", "short",
                  (Query(f"max by ({BY}, feature) ({m.DRIFT_SCORE}{{{SEL_MV}, {feat}}})",
                         f"{MV} {{{{feature}}}}"),
                   Query(f"max by ({BY}, feature) ({m.DRIFT_THRESHOLD}{{{SEL_MV}, {feat}}})",
                         f"threshold {MV} {{{{feature}}}}", reference=True)),
                  "The drift service's distance between the live window of class, confidence "
                  "and entropy and the baseline's (dashed: the threshold).",
                  no_data=NO_DRIFT_SERVICE),
            Panel("Accuracy: estimated (CBPE) and realized vs baseline", "timeseries",
                  "percentunit",
                  (Query(f"max by ({BY}) ({m.ACCURACY_ESTIMATED}{{{SEL_MV}}})", f"estimated {MV}"),
                   # slice="": the model's own figure, not a fairness slice's (scorecard.py)
                   Query(f'max by ({BY}) ({m.ACCURACY_REALIZED}{{{SEL_MV}, slice=""}})',
                         f"realized {MV}"),
                   _baseline("accuracy", "accuracy", "outputs")),
                  "Accuracy estimated from calibrated confidences (no labels needed), accuracy "
                  "on samples whose labels arrived, and the benchmark's accuracy (dashed).",
                  min=0, max=1, no_data="no accuracy yet: the estimate needs a baseline with a "
                  "calibrated confidence feature, the realized figure labels (POST /v1/labels)"),
        ),
    )


def drift() -> Dashboard:
    return Dashboard(
        uid="benchwatch-drift",
        title="benchwatch / drift",
        description="Drift scores against thresholds per feature, detections and alerts.",
        no_data=NO_DRIFT_SERVICE,
        panels=(
            Panel("Drift score vs threshold per feature", "timeseries", "short",
                  (Query(f"max by ({BY}, feature) ({m.DRIFT_SCORE}{{{SEL_MV}}})",
                         f"{MV} {{{{feature}}}}"),
                   Query(f"max by ({BY}, feature) ({m.DRIFT_THRESHOLD}{{{SEL_MV}}})",
                         f"threshold {MV} {{{{feature}}}}", reference=True)),
                  "Score of each feature's test; the feature drifts when it crosses its "
                  "dashed threshold.", width=24, height=9),
            Panel("Drift detected", "state-timeline", "short",
                  (Query(f"max by ({BY}, feature) ({m.DRIFT_DETECTED}{{{SEL_MV}}})",
                         f"{MV} {{{{feature}}}}"),),
                  "1 while the drift service reports drift on a feature (latched until it "
                  "clears or is acknowledged).",
                  mappings=((0, "ok", "green"), (1, "DRIFT", "red")), width=24),
            Panel("p-value per feature", "timeseries", "short",
                  (Query(f"min by ({BY}, feature) ({m.DRIFT_P_VALUE}{{{SEL_MV}}})",
                         f"{MV} {{{{feature}}}}"),),
                  "p-value of each feature's test (after multiple-testing control where "
                  "the service applies it).", min=0, max=1),
            Panel("Window samples", "timeseries", "short",
                  (Query(f"max by ({BY}, feature) ({m.DRIFT_WINDOW}{{{SEL_MV}}})",
                         f"{MV} {{{{feature}}}}"),),
                  "Samples in each live window the drift tests compare with the baseline."),
            Panel("Drifting since", "table", "dateTimeAsIso",
                  (Query(f"min by ({BY}, feature) ({m.DRIFT_SINCE}{{{SEL_MV}}}) * 1000",
                         f"{MV} {{{{feature}}}}", instant=True),),
                  "When each drifted feature's current episode began.",
                  no_data="no feature is drifting now"),
            Panel("Samples ingested by outcome", "timeseries", "short",
                  (Query(f"sum by (outcome, reason) (rate({m.INGEST}[{RATE}]))",
                         "{{outcome}} {{reason}}"),),
                  "Samples per second the collector accepted, deduplicated or rejected (by "
                  "reason)."),
            Panel("Seconds since the last drift evaluation", "timeseries", "s",
                  (Query(f"time() - max by (instance) ({m.DRIFT_EVALUATED})", "{{instance}}"),),
                  "Age of the drift service's last evaluation per instance (an alert fires "
                  "when it stops evaluating).", min=0),
            Panel("Refused baselines", "stat", "short",
                  (Query(f"max by (instance) ({m.BASELINE_REFUSED})", "{{instance}}",
                         instant=True),),
                  "Baseline files the drift service could not load (its log says why)."),
            Panel("benchwatch alerts (pending and firing)", "table", "short",
                  (Query(f'sum by (alertname, alertstate, {BY}, feature) '
                         f'(ALERTS{{alertname=~"{m.ALERT_PREFIX}.*", {SEL_MV}}})',
                         "{{alertname}} {{feature}}", instant=True),),
                  "Prometheus alerts from deploy/prometheus rules; Alertmanager routes the "
                  "firing ones.", width=24, no_data="no benchwatch alert is pending or firing"),
        ),
    )


def canary() -> Dashboard:
    return Dashboard(
        uid="benchwatch-canary",
        title="benchwatch / canary verdicts",
        no_data=NO_CANARY,
        description="Verdicts of `benchwatch replay` against canaries (1 PASS, 0 INCONCLUSIVE, "
                    "-1 FAIL).",
        panels=(
            Panel("Latest canary verdict", "stat", "short",
                  (Query(f"max by ({BY}, canary) (last_over_time("
                         f"{m.CANARY_VERDICT}{{{SEL_MV}}}[1d]))",
                         f"{MV} {{{{canary}}}}", instant=True),),
                  "The last verdict per model and version.",
                  mappings=((1, "PASS", "green"), (0, "INCONCLUSIVE", "yellow"),
                            (-1, "FAIL", "red"))),
            Panel("Canary verdicts over time", "state-timeline", "short",
                  (Query(f"max by ({BY}, canary) ({m.CANARY_VERDICT}{{{SEL_MV}}})",
                         f"{MV} {{{{canary}}}}"),),
                  "Each replay's overall verdict while its result was exported.",
                  mappings=((1, "PASS", "green"), (0, "INCONCLUSIVE", "yellow"),
                            (-1, "FAIL", "red"))),
        ),
    )


def all_dashboards() -> tuple[Dashboard, ...]:
    from benchwatch.grafana.genai import generative  # its own module; it imports this one
    from benchwatch.grafana.scorecard import scorecard  # its own module; it imports this one

    return (overview(), gpu_energy(), outputs(), drift(), canary(), scorecard(), generative())


# --- Grafana JSON ---------------------------------------------------------------------------
def _layout(panels: Sequence[Panel]) -> Iterator[tuple[Panel, dict[str, int]]]:
    """Left-to-right, top-to-bottom on Grafana's 24-column grid."""
    x = y = row_h = 0
    for p in panels:
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        yield p, {"x": x, "y": y, "w": p.width, "h": p.height}
        x += p.width
        row_h = max(row_h, p.height)


def _target(q: Query, ref: str) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "refId": ref, "expr": q.expr,
                         "legendFormat": q.legend, "range": not q.instant,
                         "instant": q.instant}
    if q.heatmap:
        t["format"] = "heatmap"
    elif q.instant:
        t["format"] = "table"
    return t


def _mappings(p: Panel) -> list[dict[str, Any]]:
    if not p.mappings:
        return []
    return [{"type": "value", "options": {
        str(int(v)): {"text": text, "color": color, "index": i}
        for i, (v, text, color) in enumerate(p.mappings)}}]


def _panel(p: Panel, pid: int, grid: dict[str, int]) -> dict[str, Any]:
    refs = [chr(ord("A") + i) for i in range(len(p.queries))]
    defaults: dict[str, Any] = {"unit": p.unit, "mappings": _mappings(p)}
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    overrides = [
        {"matcher": {"id": "byFrameRefID", "options": ref},
         "properties": [
             {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
             {"id": "custom.fillOpacity", "value": 0},
             {"id": "custom.lineWidth", "value": 2},
         ]}
        for ref, q in zip(refs, p.queries, strict=True) if q.reference
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "targets": [_target(q, r) for q, r in zip(p.queries, refs, strict=True)],
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }
    if p.kind == "heatmap":
        out["options"] = {"calculate": False, "yAxis": {"unit": p.unit},
                          "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"},
                          "tooltip": {"mode": "single", "yHistogram": True}}
    elif p.kind == "bargauge":  # a legend, no tooltip
        del out["options"]["tooltip"]
    elif p.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "colorMode": "background", "textMode": "value_and_name"}
    elif p.kind == "table":
        out["options"] = {"showHeader": True}
    return out


def _variable(v: Variable) -> dict[str, Any]:
    return {
        "name": v.name, "label": v.label, "type": "query", "datasource": DS,
        # the classic string form: every Grafana version since 7 migrates it to its editor
        # (no `definition`: the editor's display copy, not in the schema, written on save)
        "query": v.query,
        "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1, "options": [],
    }


def to_grafana(d: Dashboard) -> dict[str, Any]:
    """The dashboard model Grafana stores (provisioning file or the `dashboard` of an API push)."""
    panels = [_panel(p, i + 1, grid) for i, (p, grid) in enumerate(_layout(d.panels))]
    datasource_var = {
        "name": "datasource", "label": "Prometheus", "type": "datasource",
        "query": "prometheus", "current": {"text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 0, "options": [], "refresh": 1, "regex": "",
    }
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [datasource_var, *(_variable(v) for v in d.variables)]},
        "annotations": {"list": [
            {"name": "benchwatch events", "enable": True, "iconColor": "orange",
             "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "target": {"type": "tags", "tags": ["benchwatch"], "matchAny": True,
                        "limit": 100}},
            {"name": "benchwatch alerts", "enable": True, "iconColor": "red",
             "datasource": DS, "expr": ANNOTATION_EXPR, "step": "30s",
             "titleFormat": "{{alertname}}", "textFormat": "{{feature}}",
             "tagKeys": "model,model_version,feature", "useValueForTime": False},
        ]},
        "links": [{"type": "dashboards", "tags": ["benchwatch"], "asDropdown": True,
                   "title": "benchwatch", "includeVars": True, "keepTime": True}],
        "panels": panels,
    }


ANNOTATION_EXPR = f'ALERTS{{alertname=~"{m.ALERT_PREFIX}.*", alertstate="firing", {SEL_MV}}}'


def render_files(dashboards: Sequence[Dashboard] | None = None) -> dict[str, str]:
    """filename -> JSON text, deterministic so the committed files can be compared."""
    ds = all_dashboards() if dashboards is None else dashboards
    return {d.filename: json.dumps(to_grafana(d), indent=2, sort_keys=True) + "\n" for d in ds}


def write_files(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_files().items():
        path = out / name
        path.write_text(text)
        paths.append(path)
    return paths


# --- PromQL with template variables substituted ---------------------------------------------
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, variables: Mapping[str, str] | None = None,
               rate_interval: str = "1m") -> str:
    """Replace Grafana variables as Grafana would with "All" selected (regex `.*`).

    `variables` overrides single values (e.g. {"model": "digits"}); `$__rate_interval`,
    `$__interval` and `$__range` become `rate_interval`.
    """
    values = {"__rate_interval": rate_interval, "__interval": rate_interval,
              "__range": rate_interval}
    values.update(variables or {})

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in values:
            if name.startswith("__"):
                return values[name]
            # a regex-escaped value inside a PromQL string needs its backslashes escaped
            # again, as Grafana does: "digits.v2" -> "digits\\.v2" (a bare "\." is a
            # PromQL parse error, "unknown escape sequence")
            return re.escape(values[name]).replace("\\", "\\\\")
        return ".*"

    return _VAR.sub(repl, expr)


@dataclass(frozen=True)
class Expression:
    where: str  # "dashboard / panel (ref)" or "variable name"
    expr: str


def expressions(dashboards: Sequence[Dashboard] | None = None) -> list[Expression]:
    """Every PromQL expression the dashboards run (panels, alert annotations), unsubstituted."""
    ds = all_dashboards() if dashboards is None else dashboards
    out: list[Expression] = []
    for d in ds:
        for p in d.panels:
            for i, q in enumerate(p.queries):
                out.append(Expression(f"{d.title} / {p.title} ({chr(65 + i)})", q.expr))
    out.append(Expression("annotations / benchwatch alerts", ANNOTATION_EXPR))
    return out
