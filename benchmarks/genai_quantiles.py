"""How far `histogram_quantile` through a real Prometheus is from the exact p50/p90/p99 of time to
first token (5 ms - 1 s) and time per output token (2 - 200 ms), for several distributions.

    .venv/bin/python benchmarks/genai_quantiles.py [--n 100000] [--json out.json]

Each distribution's values are recorded with `probes.genai.record` (what a probed stream calls
when it ends: the same buckets and bisect), exported by the real OpenTelemetry Prometheus
exporter and scraped by the Debian `prometheus` binary; the quantiles are read with
`histogram_quantile(q, sum by (le) (<bucket>{model=...}))` and compared with numpy's exact
quantiles of the same values. Target: every error within 5%.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch import services  # noqa: E402
from probes import (  # noqa: E402
    configure,
    genai,  # noqa: E402
    shutdown,
)
from probes import metric_names as m  # noqa: E402
from probes.state import Registry  # noqa: E402

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _clip(lo: float, hi: float, draw: Draw) -> Draw:
    return lambda rng, n: np.clip(draw(rng, n), lo, hi)


def distributions(lo: float, hi: float) -> dict[str, Draw]:
    mid = float(np.sqrt(lo * hi))
    return {
        "log-uniform": lambda rng, n: np.exp(rng.uniform(np.log(lo), np.log(hi), n)),
        "uniform": lambda rng, n: rng.uniform(lo, hi, n),
        "log-normal": _clip(lo, hi, lambda rng, n: mid * np.exp(rng.normal(0, 0.6, n))),
        "exponential": _clip(lo, hi, lambda rng, n: lo + rng.exponential(mid, n)),
        "bimodal": _clip(lo, hi, lambda rng, n: np.where(rng.random(n) < 0.7, lo * 2, hi / 2)
                         * np.exp(rng.normal(0, 0.05, n))),
        "narrow at low end": lambda rng, n: lo * 1.5 * np.exp(rng.normal(0, 0.01, n)),
        "narrow at high end": lambda rng, n: hi * 0.8 * np.exp(rng.normal(0, 0.01, n)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="values per distribution")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    reg = Registry()
    port = services.free_port()
    configure("genai-quantiles", prometheus_port=port, gpu="off", registry=reg)
    prom = services.start_prometheus({"probe": [f"127.0.0.1:{port}"]})
    rng = np.random.default_rng(3)
    exact: dict[tuple[str, str], np.ndarray] = {}
    try:
        families = {"ttft": distributions(0.005, 1.0), "tpot": distributions(0.002, 0.2)}
        for i, name in enumerate(families["ttft"]):
            model = f"d{i}"
            ttft = families["ttft"][name](rng, a.n)
            tpot = families["tpot"][name](rng, a.n)
            exact[(model, "ttft")], exact[(model, "tpot")] = ttft, tpot
            sh = reg.state(model, "v1").local.shard
            for x, y in zip((ttft * 1e9).astype(np.int64).tolist(), (tpot * 1e9).tolist(), strict=True):
                genai.record(sh.genai, "text_completion", x, y, x, genai.OK, 0, 2)
        last = f"d{len(families['ttft']) - 1}"
        prom.wait_for(f'{m.GENAI_REQUESTS}{{model="{last}"}} == {a.n}', timeout_s=60)
        rows = []
        for i, name in enumerate(families["ttft"]):
            model = f"d{i}"
            for what, bucket in (("ttft", m.GENAI_TTFT_BUCKET), ("tpot", m.GENAI_TPOT_BUCKET)):
                for q in (0.5, 0.9, 0.99):
                    [res] = prom.query(f'histogram_quantile({q}, sum by (le) ({bucket}{{model="{model}"}}))')
                    got, want = float(res["value"][1]), float(np.quantile(exact[(model, what)], q))
                    rows.append({"distribution": name, "figure": what, "q": q, "prometheus_s": got,
                                 "exact_s": want, "error": got / want - 1})
    finally:
        prom.stop()
        shutdown()
    print(f"{a.n} values per distribution; TTFT 5 ms - 1 s, time per output token 2 - 200 ms")
    print(f"{'distribution':20} {'figure':6} {'q':>5} {'prometheus':>11} {'exact':>11} {'error':>8}")
    for r in rows:
        print(f"{r['distribution']:20} {r['figure']:6} {r['q']:5} {r['prometheus_s'] * 1e3:9.3f}ms "
              f"{r['exact_s'] * 1e3:9.3f}ms {r['error']:+8.2%}")
    worst = max(rows, key=lambda r: abs(r["error"]))
    verdict = "meets" if abs(worst["error"]) <= 0.05 else "MISSES"
    print(f"worst: {worst['distribution']} {worst['figure']} p{worst['q'] * 100:g} {worst['error']:+.2%} "
          f"({verdict} the 5% target)")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
