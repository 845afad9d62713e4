"""`bench --probe-metrics` on a multi-worker server: one URL per worker, histograms added up."""

from __future__ import annotations

from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from benchwatch import promtext
from benchwatch.bench.model_call import ScrapedProbe, window
from probes import metric_names as m


@pytest.fixture
def two_workers() -> Iterator[tuple[list[str], list[Histogram]]]:
    """Two endpoints with the probe's latency histogram, as two uvicorn workers expose them."""
    servers: list[WSGIServer] = []
    urls, hists = [], []
    for _ in range(2):
        reg = CollectorRegistry()
        hists.append(Histogram(m.LATENCY.removesuffix("_seconds"), "latency", ["model", "model_version"],
                               unit="seconds", registry=reg, buckets=(0.001, 0.01, 0.1))
                     .labels("m", "v1"))
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=reg)
        servers.append(server)
        urls.append(f"http://127.0.0.1:{server.server_port}/metrics")
    yield urls, hists
    for server in servers:
        server.shutdown()
        server.server_close()


def test_read_summed_adds_the_same_series_of_every_worker(two_workers) -> None:
    urls, (a, b) = two_workers
    a.observe(0.005)
    b.observe(0.005)
    b.observe(0.05)
    total = promtext.read_summed(urls)
    assert promtext.buckets(total, m.LATENCY, model="m") == {0.001: 0.0, 0.01: 2.0, 0.1: 3.0,
                                                              float("inf"): 3.0}
    with pytest.raises(OSError):  # a worker that cannot be read would skew the sums
        promtext.read_summed([*urls, "http://127.0.0.1:9/metrics"], timeout_s=1.0)


def test_the_model_call_window_counts_calls_whichever_worker_served_them(two_workers) -> None:
    urls, (a, b) = two_workers
    a.observe(0.005)  # only worker 0 has served before the scenario
    meter = ScrapedProbe(urls, "m", "v1")
    before = meter.read()
    for _ in range(10):
        b.observe(0.05)  # the bench's connection lands on worker 1
    after = meter.read()
    w = window(before, after)
    assert w is not None and w.calls == 10
    assert 0.01 < w.quantiles()["latency_p50_s"] <= 0.1
    assert ScrapedProbe(urls, "other-model").read() is None
