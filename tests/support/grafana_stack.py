"""One real stack for the dashboard tests: probes + drift service + canary gauge + Prometheus.

Everything is real and on loopback: `probes.configure` exports a probed classifier (outputs,
errors, calls held in flight), the drift service (collector, windows, tests, its own metrics
endpoint) receives the probe's samples in-process and more over its HTTP ingest, the replay's
canary-verdict endpoint serves a verdict, and the Debian Prometheus scrapes all three with the
packaged rules (deploy/prometheus) loaded (`for:` shortened so alerts fire within the test).

The one stand-in: there is no GPU here, so the probe's energy sampler reads an injected
`EnergySource` (a fake GPU whose counter grows 40 J per reading, ~200 W, with a configured
idle power of 100 W: a call is always in flight here, so none could be learned) instead of
NVML; everything downstream of the source (attribution to models, export, PromQL) is the real
code.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch import rules, services

ROOT = Path(__file__).resolve().parents[2]
MODEL, VERSION = "digits", "v3"
N_CLASSES = 10


class FakeGpu:
    """Stand-in for NVML, so the stack runs without a GPU: a cumulative energy counter and gauges."""

    def __init__(self) -> None:
        self.energy_j = 1000.0

    def read(self) -> list[Any]:
        from probes.energy import DeviceReading

        self.energy_j += 40.0
        return [DeviceReading("gpu0", "gpu", "Fake H200", energy_j=self.energy_j, power_w=400.0,
                              utilization=0.85, memory_used_bytes=40 * 2**30,
                              memory_limit_bytes=141 * 2**30)]

    def close(self) -> None:
        pass


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _summaries(probs: np.ndarray) -> dict[str, list[Any]]:
    from probes.summarize import summarize_output

    rows = summarize_output(probs, kind="classifier")
    return {k: [r[k] for r in rows] for k in rows[0]}


def write_baselines(directory: Path, rng: np.random.Generator) -> None:
    """A baseline the live traffic drifts away from, with figures the live figures exceed (so
    the regression alerts fire), and one corrupt file (so the refused-baseline alert fires)."""
    from drift import Baseline, Figure

    ref = _softmax(rng.normal(0, 3.0, size=(3000, N_CLASSES)))  # confident reference outputs
    # model-call figures at fixed rates 5 ... 320 req/s, a factor 2 apart: whatever rate the
    # driven probe reaches on a busy machine (and rate5m reads low while the series is younger
    # than 5 min), one scenario is within 2x of it, so the latency rule has a like figure; the
    # HTTP-client ones are never compared with it
    at_rate = [Figure(name, value, point, f"server_{qps}qps", float(qps))
               for qps in (5, 10, 20, 40, 80, 160, 320)
               for point in ("model_call", "http_client")
               for name, value in (("latency_p50_s", 1e-5), ("latency_p90_s", 2e-5),
                                   ("latency_p99_s", 3e-5))]
    Baseline.build(MODEL, VERSION, _summaries(ref),
                   figures=[*at_rate,
                            Figure("throughput_qps", 5000.0, "http_client", "offline", 5000.0),
                            Figure("accuracy", 0.999, "outputs", "accuracy"),
                            Figure("energy_per_inference_j", 1e-4, "model_call",
                                   "server_40qps", 40.0),
                            # the scorecard's (benchwatch.bench.scorecard)
                            Figure("flip_rate", 0.005, "outputs", "tiny_noise"),
                            Figure("mce", 1.0, "outputs", "corruptions"),
                            Figure("mean_corruption_error", 0.24, "outputs", "corruptions"),
                            Figure("corruption_accuracy", 0.78, "outputs", "gaussian_noise_5"),
                            Figure("cost_per_1k_inferences_usd", 1e-6, "http_client",
                                   "offline", 5000.0)],
                   source="tests/grafana").save(directory / f"{MODEL}-{VERSION}.json")
    (directory / "broken-v0.json").write_text("{not json")
    write_genai_baseline(directory, rng)


LM, LM_VERSION = "lm", "v1"  # the generative model (probed generator, _drive_streams)


def write_genai_baseline(directory: Path, rng: np.random.Generator) -> None:
    """The generative model's baseline: TTFT/TPOT figures at the model-call point (what its
    dashboard draws dashed) and the output-length feature its sampled streams are compared on."""
    from drift import Baseline, Figure

    figures = [Figure(f"{what}_p{p}_s", value * k, "model_call", "single_stream", 10.0)
               for what, value in (("ttft", 0.004), ("tpot", 0.001)) for p, k in ((50, 1), (90, 2), (99, 3))]
    Baseline.build(LM, LM_VERSION, {"output_tokens": rng.integers(20, 40, 2000).astype(float)},
                   figures=figures, source="tests/grafana").save(directory / f"{LM}-{LM_VERSION}.json")


def shortened_rules(dest: Path) -> list[Path]:
    """The packaged rule files with every `for:` set to 1s, in `dest`."""
    return rules.shorten_for(rules.rule_files(), dest, "1s")


@dataclass
class Stack:
    prometheus: services.Prometheus
    drift_url: str
    probe_target: str
    drift_target: str
    canary_target: str
    stop: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)


def _post(url: str, payload: Any) -> int:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 (loopback)
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _drive_probe(stop: threading.Event, rng: np.random.Generator) -> None:
    """Classifier traffic whose outputs drifted (flat logits), with errors, ~300 calls/s."""
    from probes import probe

    @probe(model=MODEL, version=VERSION)
    def predict(batch: np.ndarray) -> np.ndarray:
        time.sleep(0.001)
        if batch[0, 0] > 1.5:  # about 7% of calls
            raise ValueError("input out of range")
        return _softmax(rng.normal(0, 0.7, size=(batch.shape[0], N_CLASSES)))

    def unreadable(output: object) -> dict[str, float]:
        raise TypeError("statistics cannot read this output")

    @probe(model=MODEL, version=VERSION, outputs=unreadable)
    def odd(batch: np.ndarray) -> str:  # a probe fault: counted, never raised to the caller
        return "not an array"

    # fairness slices (probes/slices.py): region "south" is approved far less often than the
    # others, so the slice parity rules have data and their alert fires
    @probe(model="credit", version="v1", slice=lambda batch, region: region)
    def approve(batch: np.ndarray, region: str) -> np.ndarray:
        p = 0.9 if rng.random() < (0.05 if region == "south" else 0.3) else 0.1
        return np.array([[1 - p, p]])

    n = 0
    while not stop.is_set():
        try:
            predict(rng.normal(size=(2, 8)))
        except ValueError:
            pass
        n += 1
        if n % 20 == 0:
            assert odd(np.zeros((1, 8))) == "not an array"
        approve(np.zeros((1, 4)), "south" if n % 10 == 0 else ("north", "west")[n % 2])
        time.sleep(0.002)


def _drive_streams(stop: threading.Event, rng: np.random.Generator) -> None:
    """A probed token generator (the generative dashboard's series), ~50 streams/s: some
    raise mid-stream, some are closed early by their consumer."""
    from probes import probe

    @probe(model=LM, version=LM_VERSION, input_tokens=lambda prompt, n: len(prompt))
    def generate(prompt: str, n: int) -> Iterator[str]:
        time.sleep(0.003)
        for i in range(n):
            if i == 5 and prompt.startswith("bad"):
                raise RuntimeError("generation failed")
            time.sleep(0.0005)
            yield "t"

    k = 0
    while not stop.is_set():
        k += 1
        prompt = ("bad " if k % 10 == 0 else "ok ") * int(rng.integers(1, 8))
        try:
            for j, _ in enumerate(generate(prompt, int(rng.integers(3, 12)))):
                if k % 7 == 0 and j == 1:
                    break  # the client left
        except RuntimeError:
            pass
        time.sleep(0.01)


def _hold_in_flight(stop: threading.Event) -> None:
    """Calls that stay in flight for the whole test (the in-flight gauge must read > 0)."""
    from probes import probe

    with probe(model=MODEL, version=VERSION):
        stop.wait(120)


def _ingest_over_http(drift_url: str, rng: np.random.Generator) -> None:
    """Samples through the real HTTP ingest: valid ones (then labelled: realized accuracy) and
    invalid ones (rejected, counted by reason)."""
    from probes.samples import Sample

    probs = _softmax(rng.normal(0, 0.7, size=(200, N_CLASSES)))
    rows = _summaries(probs)
    samples = [Sample(MODEL, VERSION, f"http-{i}", time.time(),
                      {k: rows[k][i] for k in rows}).to_dict() for i in range(200)]
    assert _post(f"{drift_url}/v1/samples", {"samples": samples}) == 200
    # the first 100 name slice "a" and are all right, the rest slice "b" and mostly wrong: the
    # slice accuracy rules have data and their alert fires
    labels = [{"sample_id": f"http-{i}", "slice": "a", "label": str(rows["predicted_class"][i])}
              for i in range(100)]
    labels += [{"sample_id": f"http-{i}", "slice": "b", "label": str(i % N_CLASSES)}
               for i in range(100, 200)]
    assert _post(f"{drift_url}/v1/labels", {"labels": labels}) == 200


def _reject_stream(stop: threading.Event, drift_url: str) -> None:
    """Invalid samples over HTTP, steadily (the ingest-rejections rule needs > 10%)."""
    n = 0
    while not stop.wait(0.5):
        bad = [{"model": MODEL, "version": VERSION, "sample_id": f"bad-{n}-{i}",
                "timestamp": time.time(), "outputs": {"confidence": "high"}} for i in range(40)]
        _post(f"{drift_url}/v1/samples", {"samples": bad})
        n += 1


@pytest.fixture(scope="module")  # probes.configure is per process: never outlive a module
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack on the Debian Prometheus 2.42 (pull); parametrize it indirectly with one of
    tests/support/prometheus3.py's EXPORTS for Prometheus 3, pulled from or pushed to (OTLP)."""
    import probes
    from benchwatch.bench.publish import serve_verdict_gauge
    from drift.service.engine import DriftService, ServiceConfig
    from tests.support import prometheus3

    tmp = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(7)
    (tmp / "baselines").mkdir()
    write_baselines(tmp / "baselines", rng)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    service = DriftService(ServiceConfig(
        baselines_dir=tmp / "baselines", state_path=tmp / "state.sqlite",
        metrics_port=services.free_port(), ingest_port=services.free_port(), interval_s=1.0,
        min_samples=50, price_usd_per_hour=0.36, price_usd_per_kwh=0.18)).start()
    probe_port = services.free_port()
    export = getattr(request, "param", "pull-2.42")
    prom_port = services.free_port()
    prom = None
    try:
        probes.configure("grafana-test", sink=service.sink(),
                         sample_rate=0.3, gpu=FakeGpu(), energy_interval_s=0.2, idle_power_w=100.0,
                         export_interval_s=1.0,
                         **prometheus3.probe_export(export, probe_port, f"http://127.0.0.1:{prom_port}"))
        canary_port = services.free_port()
        for target, args in ((_drive_probe, (stop, np.random.default_rng(1))),
                             (_drive_streams, (stop, np.random.default_rng(3))),
                             (_hold_in_flight, (stop,)),
                             (serve_verdict_gauge, ("pass", MODEL, VERSION,
                                                    "http://127.0.0.1:8001", canary_port, 25.0))):
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            threads.append(t)
        assert service.url is not None
        _ingest_over_http(service.url, np.random.default_rng(2))
        t = threading.Thread(target=_reject_stream, args=(stop, service.url), daemon=True)
        t.start()
        threads.append(t)
        targets = {"probes": [f"127.0.0.1:{probe_port}"],
                   "drift": [f"127.0.0.1:{service.metrics.port}"],  # type: ignore[union-attr]
                   "canary": [f"127.0.0.1:{canary_port}"]}
        if export == "otlp-3":  # the probe pushes: nothing to scrape (its target stays named)
            targets["probes"] = []
        prom = prometheus3.start_for(export, targets, rule_files=shortened_rules(tmp), port=prom_port)
        yield Stack(prom, service.url, f"127.0.0.1:{probe_port}", *(t[0] for t in list(targets.values())[1:]),
                    stop, threads)
    finally:
        stop.set()
        if prom is not None:
            prom.stop()
        probes.shutdown()
        service.stop()
        for t in threads:
            t.join(timeout=30)
