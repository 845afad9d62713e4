"""`benchwatch demo --model lm`: the demo's parts for the generative example.

The same processes and order as the digits demo (`benchwatch.demo.parts.Parts`), with the
language model in their place: the streaming server `python -m benchwatch.example.lm_server`
(probe on its token stream, every stream sampled to the drift service), a release benchmark of
that server on the `text` suite over HTTP (TTFT/TPOT/output tokens per second at the
`http_client` point and the output features `output_tokens`, `stop_reason`, `token_confidence`,
`token_entropy` as the baseline), and `python -m benchwatch.demo.lm_traffic`, whose clients
switch from greedy decoding to sampling at temperature 1 at `--drift-at`.
"""

from __future__ import annotations

import time
from typing import Any

from benchwatch.bench import generative
from benchwatch.bench.text_suite import load_text_suite
from benchwatch.demo.parts import BaselineInfo, PartError, Parts, ServedModel
from benchwatch.example import lm
from drift.baseline import Baseline

BENCH_QUERIES = 700  # single-stream requests: p99 needs 662


class LmParts(Parts):
    DRIFT = "the clients now sample at temperature 1 instead of decoding greedily"
    TRAFFIC_MODULE = "benchwatch.demo.lm_traffic"
    SERVER_MODULE = "benchwatch.example.lm_server"
    SERVED_PATH = "/generate"
    SERVED_HOW = "tokens streamed, probed"
    SAMPLED_EACH = "stream"
    # its release benchmark runs one stream at a time (no fixed-rate run to match); four
    # clients keep up with streams of tens of milliseconds at the demo's rate
    TRAFFIC_WORKERS = 4

    def model(self) -> Any:
        files = lm.shipped_lm()
        self.say(f"demo: model {files.name} {files.version}, a character-level GRU language "
                 f"model shipped with benchwatch ({files.onnx_path}, held-out "
                 f"{files.meta['heldout_nats_per_char']:.2f} nats/char)")
        return files

    def _bench(self, files: Any, served: ServedModel, rate_qps: float,
               calls: int) -> BaselineInfo:
        suite = load_text_suite("text")
        backend = generative.HttpLm(f"http://{served.host}:{served.port}")
        settings = generative.GenSettings(seed=self.seed, warmup_queries=20,
                                          queries=BENCH_QUERIES)
        self.say(f"demo: benchmarking the release on the {suite.name} suite ({len(suite)} "
                 f"prompts once, then {BENCH_QUERIES} streamed requests one at a time) ...")
        t0 = time.monotonic()
        meter = generative.ScrapedStreams([served.metrics_url], files.name, files.version)
        try:
            result = generative.run_generative(backend, suite, settings, probe_meter=meter.read)
        finally:
            backend.close()
        if result.error or not result.outputs:
            raise PartError(f"the benchmark of the language model failed: {result.error}")
        b = generative.build_gen_baseline(result, suite, files.version, self.seed)
        out_dir = self.workdir / "baselines"
        out_dir.mkdir(exist_ok=True)
        path = b.save(out_dir / f"{files.name}-{files.version}.json")
        ttft, tpot = result.quantiles("ttft"), result.quantiles("tpot")
        self.say(f"demo: baseline recorded in {time.monotonic() - t0:.1f} s → {path} "
                 f"(TTFT p50 {ttft.get('ttft_p50_s', float('nan')) * 1e3:.2f} ms, TPOT p50 "
                 f"{tpot.get('tpot_p50_s', float('nan')) * 1e3:.3f} ms, "
                 f"{result.output_tokens_per_s:,.0f} output tokens/s over HTTP)")
        return BaselineInfo(path, Baseline.load(path), generative.FEATURES)
