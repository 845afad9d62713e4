"""OTLP push of exponential histograms into a real Prometheus 3 (native histograms).

One `configure()` exports both ways at once: the pull endpoint (classic buckets, scraped by the
same Prometheus 3) and OTLP push with `histograms="exponential"`, so the two paths are counted
side by side on the same calls.

The accuracy test sets latencies from 100 µs to 10 s, which no test can wait through: it counts
each latency into the probe state the way the decorator and a probed stream do per call
(`_record`: one bisect on the recording grid; `probes.genai.record` for time to first token,
per output token and the request duration), and everything after that is the real export,
OTLP, Prometheus 3 and `histogram_quantile`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

import probes
from benchwatch import services
from probes import metric_names as m
from probes import probe
from probes.buckets import LATENCY_GRID_NS
from probes.genai import OK
from probes.genai import record as record_stream
from probes.state import ProbeState, Registry
from tests.support.prometheus3 import otlp_url, start_prometheus3
from tests.support.wait import wait_until

pytestmark = pytest.mark.prometheus

N = 20_000


def _distributions(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Latency samples (seconds), every one within 100 µs .. 10 s."""
    def clip(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 1e-4, 10.0)

    return {
        "fast": clip(rng.lognormal(np.log(150e-6), 0.25, N)),
        "ms": clip(rng.lognormal(np.log(2e-3), 0.8, N)),
        "narrow": clip(rng.normal(20e-3, 20e-5, N)),  # sigma 1% of the mean
        "bimodal": clip(np.concatenate([rng.lognormal(np.log(5e-3), 0.1, N * 7 // 10),
                                        rng.lognormal(np.log(80e-3), 0.1, N - N * 7 // 10)])),
        "slow": clip(rng.lognormal(np.log(1.0), 0.6, N)),
        "wide": np.exp(rng.uniform(np.log(1e-4), np.log(10.0), N)),  # log-uniform, 5 decades
    }


def _record(state: ProbeState, seconds: np.ndarray) -> None:
    """What the decorator does per successful call, and a probed stream per request (the same
    latency as its time to first token, per output token and duration), for latencies no test
    can wait through."""
    sh = state.local.shard
    for ns in (seconds * 1e9).astype(np.int64).tolist():
        sh.ok[bisect_left(LATENCY_GRID_NS, ns)] += 1
        sh.ok_sum += ns
        record_stream(sh.genai, "text_completion", ns, ns, ns, OK, 0, 2)


@dataclass
class Both:
    prom: services.Prometheus
    registry: Registry
    samples: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def both() -> Iterator[Both]:
    reg = Registry()
    rng = np.random.default_rng(11)
    samples = _distributions(rng)
    for name, x in samples.items():
        _record(reg.state(name, "v1"), x)
    probe_port = services.free_port()
    prom = start_prometheus3({"probes": [f"127.0.0.1:{probe_port}"]})
    try:
        probes.configure("otlp-native-test", registry=reg, prometheus_port=probe_port,
                         otlp_endpoint=otlp_url(prom), histograms="exponential",
                         export_interval_s=1.0, gpu="off")
        yield Both(prom, reg, samples)
    finally:
        probes.shutdown()
        prom.stop()


def _pushed(prom: services.Prometheus, sel: str, count: int) -> None:
    """Wait until Prometheus holds the pushed native histogram with all `count` observations."""
    prom.wait_for(f"histogram_count({m.LATENCY}{{{sel}}}) == {count}", timeout_s=60)


@pytest.mark.parametrize("family", [m.LATENCY, m.GENAI_TTFT, m.GENAI_TPOT, m.GENAI_DURATION])
def test_native_quantiles_within_two_percent_from_100us_to_10s(both: Both, family: str) -> None:
    misses = []
    for name, x in both.samples.items():
        sel = f'model="{name}"' + ("" if family in (m.GENAI_TTFT, m.GENAI_TPOT) else ', outcome="ok"')
        both.prom.wait_for(f"histogram_count({family}{{{sel}}}) == {len(x)}", timeout_s=60)
        for q in (0.5, 0.9, 0.99):
            [got] = both.prom.query(f"histogram_quantile({q}, {family}{{{sel}}})")
            est, exact = float(got["value"][1]), float(np.quantile(x, q))
            err = abs(est - exact) / exact
            print(f"{family} {name:8} p{int(q * 100):<2} native {est:.6g} s  exact {exact:.6g} s  {err:.2%}")  # -s
            if err > 0.02:
                misses.append(f"{name} p{int(q * 100)}: {est:.6g} s vs exact {exact:.6g} s ({err:.2%})")
    assert not misses, misses


# every histogram the probe exports -> the labels that split it besides model and model_version
HISTOGRAMS = {m.LATENCY: ("outcome",), m.BATCH_SIZE: (), m.OUTPUT_CONFIDENCE: (), m.OUTPUT_ENTROPY: (),
              m.OUTPUT_VALUE: ("feature",), m.GENAI_TTFT: ("gen_ai_operation_name",),
              m.GENAI_TPOT: ("gen_ai_operation_name",), m.GENAI_DURATION: ("gen_ai_operation_name", "outcome")}


def test_one_series_per_model_version_outcome(both: Both) -> None:
    """Real probed calls, ok and raising: a classifier (batch size, confidence, entropy), a
    regression model (values) and a stream (TTFT, TPOT, duration). Over OTLP every histogram is
    one native-histogram series per model × version × outcome (× feature, operation); the
    classic pull endpoint spends 120 on each latency one (118 buckets, sum, count)."""
    reg = both.registry
    logits = np.random.default_rng(2).normal(size=(4, 3))
    fns = {}
    for version in ("v1", "v2"):
        @probe(model="count-a", version=version, registry=reg)
        def classify(x: np.ndarray, fail: bool) -> np.ndarray:
            if fail:
                raise ValueError("no")
            return logits

        @probe(model="count-b", version=version, outputs="regression", registry=reg)
        def regress(x: np.ndarray, fail: bool) -> np.ndarray:
            if fail:
                raise ValueError("no")
            return x[:, 0] - 0.5  # negative and positive values

        @probe(model="count-g", version=version, registry=reg)
        def stream(x: np.ndarray, fail: bool) -> Iterator[int]:
            yield from range(3)
            if fail:
                raise ValueError("no")

        fns["count-a", version], fns["count-b", version] = classify, regress
        fns["count-g", version] = lambda x, fail, stream=stream: list(stream(x, fail))
    x = np.random.default_rng(3).uniform(size=(4, 2))
    for call in fns.values():
        for i in range(30):
            try:
                call(x, i % 3 == 0)
            except ValueError:
                pass
    for (model, version) in fns:
        for outcome, n in (("ok", 20), ("error", 10)):
            _pushed(both.prom, f'model="{model}", model_version="{version}", outcome="{outcome}"', n)
    both.prom.wait_for(f'histogram_count({m.GENAI_DURATION}{{model="count-g", outcome="error"}}) == 10', 60)
    sel = 'model=~"count-.*", job!="probes"'
    assert not both.prom.query(f'{{__name__=~".+_bucket", {sel}}}')  # nothing pushed as classic buckets
    for family, split in HISTOGRAMS.items():
        by = ", ".join(("model", "model_version", *split))
        pushed = both.prom.query(f'count by ({by}) ({{__name__=~"{family}.*", {sel}}})')
        native = both.prom.query(f'histogram_count({family}{{{sel}}})')
        # 2 versions of: 3 models × ok/error (latency), 2 models (batch size: a numpy first
        # argument of a call that returned), 1 model × ok/error (stream duration), 1 model
        groups = {m.LATENCY: 12, m.BATCH_SIZE: 4, m.GENAI_DURATION: 4}.get(family, 2)
        assert len(pushed) == len(native) == groups, (family, pushed)
        assert all(r["value"][1] == "1" for r in pushed), (family, pushed)
    wait_until(lambda: both.prom.query(f'count({m.LATENCY_BUCKET}{{model=~"count-.*", job="probes"}}) == 1416'),
               timeout_s=60, what="the pull endpoint's buckets to be scraped")
    pulled = both.prom.query(f'count by (model, model_version, outcome) '
                             f'({{__name__=~"{m.LATENCY}_(bucket|sum|count)", model=~"count-.*", job="probes"}})')
    assert len(pulled) == 12 and all(r["value"][1] == "120" for r in pulled), pulled
    # every series of one probed model version, each way (the README's figures: -s prints them)
    for model in ("count-a", "count-b", "count-g"):
        for r in both.prom.query(f'count by (job) ({{model="{model}", model_version="v1"}})'):
            way = "pull (classic)" if r["metric"]["job"] == "probes" else "OTLP (native)"
            print(f"series for one model version ({model}), {way}: {r['value'][1]}")


def test_the_pushed_histogram_is_native_and_rates_like_the_pulled_one(both: Both) -> None:
    """The rules' two branches agree: the request rate and p99 read from the native series
    equal those read from the classic buckets of the same calls (same counts; quantiles within
    the classic buckets' width)."""
    @probe(model="rate", version="v1", outputs=None, registry=both.registry)
    def call() -> None:
        time.sleep(0.002)

    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        call()
    total = int(sum(both.registry.state("rate", "v1").snapshot().totals.ok))
    _pushed(both.prom, 'model="rate"', total)
    both.prom.wait_for(f'sum({m.REQUESTS}{{model="rate", job="probes"}}) == {total}', timeout_s=30)
    [native] = both.prom.query(f'histogram_quantile(0.99, sum({m.LATENCY}{{model="rate"}}))')
    [classic] = both.prom.query(
        f'histogram_quantile(0.99, sum by (le) ({m.LATENCY_BUCKET}{{model="rate", job="probes"}}))')
    a, b = float(native["value"][1]), float(classic["value"][1])
    assert 0.002 <= a < 1.0 and abs(a - b) / b < 0.07, (a, b)
