"""The scorecard dashboard: live cost per 1 000 inferences, and the baseline's scorecard
figures (robustness, bench cost) that the drift service exports."""

from __future__ import annotations

from benchwatch.grafana.boards import (
    BASELINE_FIGURE,
    BY,
    MV,
    SEL_MV,
    Dashboard,
    Panel,
    Query,
    _recorded,
)
from probes import metric_names as m

NO_PRICE = ("no price configured (`benchwatch drift serve --price-usd-per-hour P "
            "[--price-usd-per-kwh E]`), or no inferences in the window: a cost per inference "
            "needs both")
COMPARED = ("accuracy|latency_p99_s|throughput_qps|energy_per_inference_j|mce|flip_rate|"
            "cost_per_1k_inferences_usd")
SLICED = SEL_MV + ', slice!=""'
NO_SLICES = ("no probe names a slice: `@probe(..., slice=lambda *args, **kwargs: group)` "
             "(docs/probes.md, Fairness slices), or no traffic in the window")
NO_SCORECARD = ("the baseline has no scorecard figures: rebuild it with `benchwatch bench` "
                "(robustness is on by default; cost needs --price-usd-per-hour)")


def _figure(figure: str, by: str = "") -> str:
    extra = f", {by}" if by else ""
    return f'max by ({BY}{extra}) ({BASELINE_FIGURE}{{{SEL_MV}, figure="{figure}"}})'


def scorecard() -> Dashboard:
    return Dashboard(
        uid="benchwatch-scorecard",
        title="benchwatch / scorecard",
        description="What serving costs live, and the benchmark scorecard of the baseline: "
                    "robustness under corruptions, flip rate under tiny noise, bench cost.",
        panels=(
            Panel("Cost per 1 000 inferences (live)", "timeseries", "currencyUSD",
                  (Query(_recorded("model_version:benchwatch_cost_per_1k_inferences_usd:rate5m"),
                         MV),),
                  "The serving processes' price per hour over the inferences they served, plus "
                  "energy per inference (above idle) times the energy price "
                  "(scorecard.rules.yml). Not compared with the bench's figure: the bench "
                  "prices its saturated offline throughput, live traffic is what it is.",
                  no_data=NO_PRICE),
            Panel("Bench cost per 1 000 inferences (offline throughput)", "stat", "currencyUSD",
                  (Query(_figure("cost_per_1k_inferences_usd"), MV, instant=True),),
                  "The baseline's figure: the instance price at the bench's offline "
                  "throughput plus its measured energy; the floor live serving can reach.",
                  no_data=NO_SCORECARD),
            Panel("Flip rate under tiny noise (baseline)", "stat", "percentunit",
                  (Query(_figure("flip_rate"), MV, instant=True),),
                  "How often tiny input noise changed the predicted class in the bench; "
                  "`benchwatch replay` gates canaries on the same figure.",
                  no_data=NO_SCORECARD),
            Panel("Mean corruption error (baseline)", "stat", "short",
                  (Query(_figure("mce"), f"mCE {MV}", instant=True),
                   Query(_figure("mean_corruption_error"), f"mean error {MV}", instant=True)),
                  "mCE: the error under corruptions over the suite's reference model's (1 = as "
                  "robust as the reference, lower is better); mean error: plain error over all "
                  "corruptions and severities.", no_data=NO_SCORECARD),
            Panel("Accuracy under corruption (baseline)", "bargauge", "percentunit",
                  (Query(_figure("corruption_accuracy", "scenario"),
                         f"{{{{scenario}}}} {MV}", instant=True),),
                  "Accuracy per corruption and severity (1 mild ... 5 severe) from the bench.",
                  width=24, height=10, min=0, max=1, no_data=NO_SCORECARD),
            Panel("Versions side by side (baseline figures)", "table", "short",
                  (Query(f"max by ({BY}, figure, point, scenario) ({BASELINE_FIGURE}"
                         f'{{{SEL_MV}, figure=~"{COMPARED}", '
                         'scenario=~"accuracy|offline|single_stream|corruptions|tiny_noise"})',
                         f"{{{{figure}}}} {MV}", instant=True),),
                  "Each recorded version's scorecard, from the baselines the drift service "
                  "serves: what `benchwatch bench` compares across versions (compare.html). "
                  "Backends of one version share its baseline here; the per-framework "
                  "comparison is the bench's own report.", width=24, no_data=NO_SCORECARD),
            Panel("Selection-rate parity by slice", "timeseries", "short",
                  (Query(_recorded("model_version_slice_class:benchwatch_selection_rate_parity"
                                   ":ratio1h"),
                         f"{{{{slice}}}} class {{{{predicted_class}}}} {MV}"),),
                  "Per fairness slice and predicted class, the slice's share of that class over "
                  "the model's overall share (last hour). The parity alert fires outside "
                  "0.8-1.25 with >= 30 predictions and the 95% interval excluding 1.",
                  width=24, no_data=NO_SLICES),
            Panel("Accuracy by slice (labels)", "timeseries", "percentunit",
                  (Query(f'max by ({BY}, slice) ({m.ACCURACY_REALIZED}{{{SLICED}}})',
                         f"{{{{slice}}}} {MV}"),
                   Query(f'max by ({BY}) ({m.ACCURACY_REALIZED}{{{SEL_MV}, slice=""}})',
                         f"overall {MV}", reference=True)),
                  "Realized accuracy per fairness slice named with the delayed labels "
                  '(POST /v1/labels with "slice"), against the model\'s overall (dashed); the '
                  "accuracy parity alert fires outside 0.8-1.25 with >= 30 labels and the "
                  "95% interval excluding parity.", min=0, max=1,
                  no_data="no labels naming a slice have arrived (POST /v1/labels items with "
                          '"slice")'),
            Panel("Latency p99 by slice", "timeseries", "s",
                  (Query(_recorded("model_version_slice:benchwatch_inference_latency_p99_seconds"
                                   ":rate5m"), f"{{{{slice}}}} {MV}"),),
                  "The probe's model-call p99 per fairness slice.", no_data=NO_SLICES),
            Panel("Errors per second by slice", "timeseries", "reqps",
                  (Query(_recorded("model_version_slice:benchwatch_inference_errors:rate5m"),
                         f"{{{{slice}}}} {MV}"),),
                  "Exceptions per fairness slice (0 for a slice served without errors).",
                  no_data=NO_SLICES),
        ),
    )
