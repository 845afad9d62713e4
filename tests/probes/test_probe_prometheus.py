"""Against a real Prometheus (Debian package): truthful quantiles, and multi-worker totals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchwatch.services import free_port
from probes import configure, probe, shutdown
from probes import metric_names as m
from probes.state import Registry

pytestmark = pytest.mark.prometheus
HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def test_histogram_quantiles_match_what_the_caller_measured(prometheus) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()
    port = free_port()
    configure("quantiles", prometheus_port=port, gpu="off", registry=reg)
    prom = prometheus({"probe": [f"127.0.0.1:{port}"]})

    @probe(model="q", version="v1", registry=reg)
    def infer(delay_s: float) -> float:
        time.sleep(delay_s)
        return delay_s

    # log-uniform 1-200 ms: as many fast as slow calls per decade, a long tail for p99
    rng = np.random.default_rng(42)
    n_threads, per_thread = 16, 110
    delays = np.exp(rng.uniform(np.log(0.001), np.log(0.2), size=(n_threads, per_thread)))
    measured: list[list[float]] = [[] for _ in range(n_threads)]

    def worker(k: int) -> None:
        for d in delays[k]:
            t0 = time.perf_counter()
            infer(float(d))
            measured[k].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = n_threads * per_thread
    prom.wait_for(f'{m.REQUESTS}{{model="q"}} == {total}', timeout_s=30)
    lat = np.concatenate([np.array(x) for x in measured])
    report = []
    for q in (0.5, 0.9, 0.99):
        [res] = prom.query(
            f'histogram_quantile({q}, sum by (le) ({m.LATENCY_BUCKET}{{model="q"}}))')
        got, want = float(res["value"][1]), float(np.quantile(lat, q))
        report.append((q, got, want, got / want - 1))
    print("quantile  prometheus  caller  error:", *(f"p{q * 100:g} {g * 1e3:.2f}ms {w * 1e3:.2f}ms {e:+.2%}"
                                                   for q, g, w, e in report), sep="\n  ")
    assert all(abs(err) <= 0.05 for *_, err in report), report


def _free_range(n: int) -> int:
    """A base port with the next n-1 ports free too (best effort: others run tests at once)."""
    for _ in range(50):
        base = free_port()
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def test_multi_worker_totals_are_summed_in_promql(prometheus) -> None:  # type: ignore[no-untyped-def]
    # Identical workers, identical environment: each binds the first free port of the range
    # and names itself; Prometheus scrapes the whole range and PromQL sums the workers.
    span = 4
    base = _free_range(span)
    env = {**os.environ, "BENCHWATCH_PROMETHEUS_PORT": str(base), "BENCHWATCH_PROMETHEUS_PORT_SPAN": str(span),
           "BENCHWATCH_WORKER_ID": "auto"}
    calls = [300, 500]
    procs = []
    try:
        ready = []
        for c in calls:  # started one after the other, as a pre-fork master does
            p = subprocess.Popen([sys.executable, str(HERE / "probe_worker.py"), str(c)], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None
            word, port, worker_id = p.stdout.readline().split()
            assert word == "READY"
            ready.append((int(port), worker_id))
        assert len({port for port, _ in ready}) == 2 and len({w for _, w in ready}) == 2
        prom = prometheus({"serving": [f"127.0.0.1:{p}" for p in range(base, base + span)]})
        total = sum(calls)
        prom.wait_for(f'sum by (model) ({m.REQUESTS}{{model="mw"}}) == {total}', timeout_s=30)
        per_worker = prom.query(f'sum by (worker_id) ({m.REQUESTS}{{model="mw"}})')
        got = {r["metric"]["worker_id"]: float(r["value"][1]) for r in per_worker}
        assert got == {ready[0][1]: 300.0, ready[1][1]: 500.0}
        # quantiles over all workers: merge buckets first, then take the quantile
        [p90] = prom.query(f'histogram_quantile(0.9, sum by (le) ({m.LATENCY_BUCKET}{{model="mw"}}))')
        assert 0.0035 <= float(p90["value"][1]) <= 0.008  # the 4 ms half (sleep overshoots under load)
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
