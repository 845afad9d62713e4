"""The generative-models dashboard: time to first token and per output token against the
baseline, tokens per second, joules per token, and output drift.

It reads the gen_ai_* series of probed streams (probes/genai.py) and, through the shipped
mapping rules (deploy/prometheus/genai.rules.yml), the same series made from vLLM's and SGLang's
own metrics; its template variables list models from those series, so a vLLM model appears
here without a benchwatch probe.
"""

from __future__ import annotations

from benchwatch.grafana.boards import (
    BY,
    MV,
    NO_DRIFT_SERVICE,
    NO_ENERGY,
    SEL_MV,
    Dashboard,
    Panel,
    Query,
    Variable,
    _baseline,
    _recorded,
)
from probes import metric_names as m

__all__ = ["GENAI_VARIABLES", "generative"]

# from the token counter: one series kind whether histograms arrive classic or native
GENAI_VARIABLES: tuple[Variable, ...] = (
    Variable("model", "model", m.GENAI_TOKENS, "model"),
    Variable("version", "version", f'{m.GENAI_TOKENS}{{model=~"$model"}}', "model_version"),
    Variable("instance", "instance",
             f'{m.GENAI_TOKENS}{{model=~"$model", model_version=~"$version"}}', "instance"),
)
NO_STREAMS = ("no streamed requests: probe a generator function (or a streaming ASGI route), or "
              "map vLLM/SGLang metrics with the shipped genai.rules.yml")
NO_TOKENS = "no tokens generated in the window: a quantile of no requests is undefined, not 0"


def _quantiles(hist: str, what: str, figure: str) -> tuple[Query, ...]:
    """The recorded p50/p90/p99 of `hist` (genai.rules.yml), with the baseline's figures."""
    live = tuple(Query(_recorded(f"model_version:{hist.removesuffix('_seconds')}_p{p}_seconds:rate5m"),
                       f"p{p} {MV}") for p in (50, 90, 99))
    return live + tuple(_baseline(f"{figure}_p{p}_s", f"{what} p{p}") for p in (50, 90, 99))


def generative() -> Dashboard:
    same = (" Dashed: the baseline's figure measured at the same point (the probe around the "
            "model call, single stream), one line per bench scenario; none when the baseline "
            "has no such figure.")
    return Dashboard(
        uid="benchwatch-generative",
        title="benchwatch / generative models",
        description="Streamed (token-generating) requests: time to first token and per output "
                    "token against the benchmark baseline, tokens per second, joules per token "
                    "and output drift; from probed generators, or vLLM/SGLang through the "
                    "shipped mapping rules.",
        variables=GENAI_VARIABLES,
        no_data=NO_STREAMS,
        panels=(
            Panel("Time to first token p50 / p90 / p99 vs baseline", "timeseries", "s",
                  _quantiles(m.GENAI_TTFT, "TTFT", "ttft"),
                  "From the request (a generator's first next()) to its first token." + same,
                  width=24, height=9, no_data=NO_TOKENS),
            Panel("Time per output token p50 / p90 / p99 vs baseline", "timeseries", "s",
                  _quantiles(m.GENAI_TPOT, "TPOT", "tpot"),
                  "Per request: (last token time - first token time) / tokens after the first "
                  "(vLLM's definition); requests of two or more tokens." + same,
                  width=24, height=9, no_data=NO_TOKENS),
            Panel("Tokens per second", "timeseries", "short",
                  (Query(_recorded("model_version:benchwatch_genai_output_tokens:rate5m"),
                         f"output {MV}"),
                   Query(_recorded("model_version:benchwatch_genai_input_tokens:rate5m"),
                         f"input {MV}")),
                  "Output tokens generated and input (prompt) tokens read per second, over all "
                  "concurrent requests (input only where the probe counts them: input_tokens=). "
                  "Not compared with the bench's single-stream rate: live concurrency differs.",
                  no_data=NO_STREAMS),
            Panel("Streams per second by outcome", "timeseries", "reqps",
                  (Query(_recorded("model_version_outcome:benchwatch_genai_streams:rate5m"),
                         f"{MV} {{{{outcome}}}}"),),
                  "Finished streams: ok (exhausted), error (raised), cancelled (the client left "
                  "or closed it early). vLLM/SGLang series carry no outcome.",
                  no_data=NO_STREAMS),
            Panel("Joules per token", "timeseries", "joule",
                  (Query(_recorded("model_version:benchwatch_genai_energy_per_output_token_joules"
                                   ":rate5m"), f"per output token {MV}"),
                   Query(_recorded("model_version:benchwatch_genai_energy_per_token_joules:rate5m"),
                         f"per token (in + out) {MV}")),
                  "The model's device energy above idle (split over the requests running in each "
                  "sampling interval by busy time) over its tokens; 0 while it generates nothing.",
                  no_data=NO_ENERGY),
            Panel("Output tokens per joule", "timeseries", "short",
                  (Query(_recorded("model_version:benchwatch_genai_output_tokens_per_joule:rate5m"),
                         MV),),
                  "Output tokens per joule of energy above idle; 0 while it generates nothing, "
                  "none where tokens came with no attributed energy (undefined).",
                  no_data=NO_ENERGY),
            Panel("Output length: mean tokens per request", "timeseries", "short",
                  (Query(_recorded("model_version:benchwatch_genai_output_tokens_per_stream:rate5m"),
                         MV),),
                  "Output tokens per finished stream (0 while no stream finished).",
                  no_data=NO_STREAMS),
            Panel("Output drift: score vs threshold", "timeseries", "short",
                  (Query(f"max by ({BY}, feature) ({m.DRIFT_SCORE}{{{SEL_MV}, "
                         f'feature=~"{m.GENAI_OUTPUT_FEATURES}"}})', f"{MV} {{{{feature}}}}"),
                   Query(f"max by ({BY}, feature) ({m.DRIFT_THRESHOLD}{{{SEL_MV}, "
                         f'feature=~"{m.GENAI_OUTPUT_FEATURES}"}})', f"threshold {MV} {{{{feature}}}}",
                         reference=True)),
                  "The drift service's distance between live and baseline output length, stop "
                  "reason and per-token confidence/entropy (dashed: the threshold).",
                  no_data=NO_DRIFT_SERVICE),
        ),
    )
