"""Streamed requests through a real Prometheus (Debian package): TTFT and TPOT quantiles from
`histogram_quantile` within 5% of what the callers measured, and exact token counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from benchwatch.services import free_port
from probes import configure, probe, shutdown
from probes import metric_names as m
from probes.state import Registry

pytestmark = pytest.mark.prometheus


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))


def test_ttft_and_tpot_quantiles_match_what_the_callers_measured(prometheus) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()
    port = free_port()
    configure("genai-quantiles", prometheus_port=port, gpu="off", registry=reg)
    prom = prometheus({"probe": [f"127.0.0.1:{port}"]})
    items = 3

    @probe(model="lm", version="v1", registry=reg, input_tokens=lambda ttft, tpot: 11)
    def generate(ttft: float, tpot: float) -> Iterator[int]:
        time.sleep(ttft)
        yield 0
        for i in range(1, items):
            time.sleep(tpot)
            yield i

    # log-uniform over the target ranges: TTFT 5 ms - 1 s, per token 2 - 200 ms
    rng = np.random.default_rng(11)
    n_threads, per_thread = 100, 20
    ttfts = _log_uniform(rng, 0.005, 1.0, (n_threads, per_thread))
    tpots = _log_uniform(rng, 0.002, 0.2, (n_threads, per_thread))
    measured: list[list[tuple[float, float]]] = [[] for _ in range(n_threads)]

    def worker(k: int) -> None:
        for a, b in zip(ttfts[k], tpots[k], strict=True):
            gen = generate(float(a), float(b))
            t0 = time.perf_counter()
            next(gen)
            first = time.perf_counter()
            for _ in gen:
                last = time.perf_counter()
            measured[k].append((first - t0, (last - first) / (items - 1)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = n_threads * per_thread
    prom.wait_for(f'{m.GENAI_REQUESTS}{{model="lm", outcome="ok"}} == {total}', timeout_s=60)
    exact = np.array([x for per in measured for x in per])
    report = []
    for col, bucket in ((0, m.GENAI_TTFT_BUCKET), (1, m.GENAI_TPOT_BUCKET)):
        for q in (0.5, 0.9, 0.99):
            [res] = prom.query(f'histogram_quantile({q}, sum by (le) ({bucket}{{model="lm"}}))')
            got, want = float(res["value"][1]), float(np.quantile(exact[:, col], q))
            report.append((bucket, q, got, want, got / want - 1))
    print("quantile  prometheus  callers  error:",
          *(f"{b} p{q * 100:g} {g * 1e3:.2f}ms {w * 1e3:.2f}ms {e:+.2%}" for b, q, g, w, e in report),
          sep="\n  ")
    assert all(abs(err) <= 0.05 for *_, err in report), report
    tokens = {r["metric"][m.GENAI_TOKEN_TYPE]: float(r["value"][1])
              for r in prom.query(f'{m.GENAI_TOKENS}{{model="lm"}}')}
    assert tokens == {"input": 11.0 * total, "output": float(items * total)}
