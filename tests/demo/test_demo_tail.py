"""The demo's live-vs-baseline p99 comparison under like conditions: how far a p99 of n calls can
be trusted (`benchwatch.demo.tail`) and what the summary and the view say with it, the traffic
generator's latency counted from the scheduled arrival as the bench's server scenario counts
it, and the benchmarked server read at the live scrape interval."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from rich.console import Console

from benchwatch import promtext
from benchwatch.bench.model_call import read_every
from benchwatch.bench.stats import quantile
from benchwatch.demo import tail
from benchwatch.demo.session import _Progress, _RunState, before_drift
from benchwatch.demo.traffic import Traffic
from benchwatch.demo.view import P99_CALLS, DemoStatus, render
from drift.figures import Figure
from probes.buckets import LATENCY_BOUNDS_S


def test_the_p99_of_1200_calls_lies_between_their_5th_and_19th_slowest() -> None:
    lo, hi = tail.levels(1200, 0.99)
    assert (1 - lo) * 1200 == pytest.approx(18.8, abs=0.1)
    assert (1 - hi) * 1200 == pytest.approx(4.2, abs=0.1)
    lo_big, hi_big = tail.levels(1_200_000, 0.99)
    assert lo < lo_big < 0.99 < hi_big < hi  # more calls, a tighter interval


def test_the_interval_holds_the_true_p99_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    true_p99 = float(np.exp(0.6 * 2.326348))  # lognormal(0, 0.6)
    trials = 400
    hits = sum(lo <= true_p99 <= hi for lo, hi in (
        tail.of_values(0.99, rng.lognormal(0.0, 0.6, 1200)) or (0.0, 0.0) for _ in range(trials)))
    assert 0.92 <= hits / trials <= 0.99


def test_a_histogram_and_its_raw_calls_give_the_same_interval() -> None:
    values = np.random.default_rng(1).lognormal(np.log(0.0002), 0.5, 5000)
    bounds = (*LATENCY_BOUNDS_S, np.inf)
    cumulative = {float(b): float(np.sum(values <= b)) for b in bounds}
    raw, hist = tail.of_values(0.99, values), tail.of_buckets(0.99, cumulative)
    assert raw is not None and hist is not None
    assert hist[0] == pytest.approx(raw[0], rel=0.06) and hist[1] == pytest.approx(raw[1], rel=0.06)
    assert tail.of_buckets(0.99, {}) is None and tail.of_values(0.99, []) is None


@pytest.mark.parametrize("n,slower,verdict", [
    (1_200, 1.0, "too few calls"),  # the same server, the demo's window: cannot tell
    (400_000, 1.0, "within 1.2x"),
    (400_000, 2.0, "outside 1.2x"),
])
def test_the_verdict_says_when_the_calls_cannot_tell(n: int, slower: float, verdict: str) -> None:
    rng = np.random.default_rng(2)
    base, live = rng.lognormal(0.0, 0.6, n), slower * rng.lognormal(0.0, 0.6, n)
    bi, li = tail.of_values(0.99, base), tail.of_values(0.99, live)
    assert bi is not None and li is not None
    c = tail.Comparison.of(quantile(live, 0.99), li, quantile(base, 0.99), bi)
    assert c is not None and c.low <= c.ratio <= c.high
    assert verdict in c.verdict


class _Slow(http.server.BaseHTTPRequestHandler):
    """Answers every POST after SERVICE_S: slower than the requests arrive; notes each GET."""

    protocol_version = "HTTP/1.1"
    SERVICE_S = 0.04
    gets: list[float] = []

    def setup(self) -> None:
        super().setup()  # headers and body go out as two writes: no Nagle delay between them
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.SERVICE_S)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:  # noqa: N802
        self.gets.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _run_to_end(t: Traffic) -> None:
    t.start()
    deadline = time.monotonic() + 30
    while t.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    t.stop()


def test_traffic_counts_a_request_issued_late_as_latency(slow_server: int) -> None:
    # 50 req/s for 1 s on one client whose server takes 40 ms: the requests queue at the
    # client. Timed from when each was sent, every one would read ~40 ms; from its scheduled
    # arrival (the bench's and LoadGen's rule) the queue shows.
    images = np.zeros((4, 64), dtype=np.float32)
    t = Traffic("127.0.0.1", slow_server, rate_qps=50.0, drift_at_s=10.0, duration_s=1.0,
                workers=1, images=images)
    _run_to_end(t)
    stats = t.stats()
    assert stats.errors == 0 and stats.ok == stats.sent >= 30  # every scheduled arrival is sent
    lat = np.asarray(stats.latencies_s)
    assert lat.min() >= _Slow.SERVICE_S * 0.9
    assert lat.max() > 5 * _Slow.SERVICE_S, lat  # the last ones waited for the queue
    assert t.status()["clean"]["n"] == stats.ok


def test_traffic_holds_its_clean_quantiles_to_the_baselines_number_of_calls(
        slow_server: int) -> None:
    # the demo's live client window has the bench's fixed-rate calls, as its model-call window
    t = Traffic("127.0.0.1", slow_server, rate_qps=50.0, drift_at_s=10.0, duration_s=1.0,
                workers=1, images=np.zeros((4, 64), dtype=np.float32), clean_calls=20)
    _run_to_end(t)
    stats, clean = t.stats(), t.status()["clean"]
    assert stats.ok >= 30 and clean["n"] == 20
    # the first 20 (too few calls to leave a warm-up out), not the slower ones queued later
    assert clean["p99_s"] == quantile(np.asarray(stats.latencies_s[:20]), 0.99)
    assert clean["p99_s"] < max(stats.latencies_s)
    assert t.status()["clean"] is clean  # final once no call can join: not recomputed


def _scrape(at: float, calls: int, slow: int) -> promtext.Scrape:
    """A probe endpoint's latency histogram: `calls` calls so far, `slow` of them at 2-5 ms."""
    text = "".join(
        f'benchwatch_inference_duration_seconds_bucket{{le="{le}",model="digits"}} {n}\n'
        for le, n in (("0.0002", calls - slow), ("0.002", calls - slow), ("0.005", calls),
                      ("+Inf", calls)))
    text += f'benchwatch_inference_duration_seconds_count{{model="digits"}} {calls}\n'
    return promtext.parse(text, at)


def test_the_views_p99_rests_on_enough_calls_for_one() -> None:
    prog = _Progress()
    # 40 calls/s read every second; the slow calls are all in the first 10 s
    for second in range(31):
        p50, p99, qps, calls = prog.latency(_scrape(second, 40 * second, min(second, 10)))
    assert calls is not None and P99_CALLS <= calls < P99_CALLS + 40  # ~17 s, not 1 s or 30 s
    assert qps == pytest.approx(40.0)
    assert p99 is not None and p99 < 0.002  # the slow calls of the first 10 s are out of it
    again = prog.latency(_scrape(31, 40 * 30, 10))  # read again before the next scrape
    assert again[3] == calls and again[1] == p99
    young = _Progress()
    assert young.latency(_scrape(0, 100, 0))[3] == 100  # fewer only while the run is younger
    status = DemoStatus(elapsed_s=1.0, duration_s=10.0, drift_at_s=5.0, drifting=False,
                        requests=100, errors=0, qps=40.0, p50_s=0.0001, p99_s=0.0002,
                        client_p50_s=None, client_p99_s=None, p99_calls=100,
                        baseline={"model_call": {"latency_p99_s": Figure(
                            "latency_p99_s", 0.0002, "model_call", "server_40qps", 40.0)}})
    console = Console(file=io.StringIO(), width=200)
    console.print(render(status, "t"))
    row = next(line for line in console.file.getvalue().splitlines()  # type: ignore[attr-defined]
               if "p99 model call" in line)
    assert "100 calls" in row and "too few calls for a p99" in row and "×" not in row


def test_the_bench_server_is_read_at_the_live_scrape_interval(slow_server: int) -> None:
    reads: list[float] = []
    _Slow.gets = reads
    with read_every(f"http://127.0.0.1:{slow_server}/metrics", 0.05):
        deadline = time.monotonic() + 10
        while len(reads) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(reads) >= 4
    # the reader is joined when the block ends: no thread left to read again
    assert not any(t.name == "bench-probe-scrape" for t in threading.enumerate())
    gaps = np.diff(reads)
    assert gaps.min() >= 0.04


def test_before_the_drift_each_p99_comes_with_what_its_calls_can_tell() -> None:
    state = _RunState(window_calls=1200)
    state.warm_probe = _scrape(0, 100, 0)
    state.clean_probe = _scrape(30, 1300, 12)  # 1 200 calls after the warm-up, 1% slow
    state.at_point = {"model_call": {"latency_p99_s": Figure(
        "latency_p99_s", 0.002, "model_call", "server_40qps", 40.0)}}
    state.p99_intervals = {("model_call", "server_40qps"): (0.0015, 0.003)}
    fig = before_drift(state)["model_call"]
    lo, hi = fig["live_p99_interval_s"]
    assert lo < fig["live_p99_s"] <= hi
    assert fig["p99_ratio_range"][0] < fig["p99_ratio"] < fig["p99_ratio_range"][1]
    assert "too few calls" in fig["verdict"]
    assert before_drift(_RunState())["model_call"]["verdict"] is None  # nothing to compare
