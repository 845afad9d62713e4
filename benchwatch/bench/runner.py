"""The benchmark runner: MLPerf LoadGen-like scenarios over a suite and a backend.

- Accuracy pass: every suite row once, in batches (like LoadGen's accuracy mode, separate
  from the timed runs).
- SingleStream: one query at a time; latency percentiles p50/p90/p99.
- Offline: all queries at once in batches; throughput in samples/s.
- Server: Poisson arrivals at a target QPS; latency counts from the *scheduled* arrival (a late
  issue is the system's delay, as in LoadGen); a search finds the highest QPS whose p99 meets the
  bound. Fixed rates (`RunSettings.fixed_rates_qps`): Poisson runs at given rates, so a baseline
  holds a figure at the request rate production serves (scenario `server_<R>qps`).

With a model-call meter (`benchwatch.bench.model_call`), the probe's own histogram is read
before and after each latency scenario, so the baseline carries figures at the `model_call`
point (what live monitoring measures) beside the client's (`http_client` or `harness`).

Warm-up queries are run and discarded. A percentile is marked significant only with enough
queries (>= 64 for p90, >= 662 for p99). Every backend gets the same seeded query order.

We use our own loop rather than `mlperf_loadgen` as the engine: the judge needs every query's
latency (LoadGen reports only summaries) and the harness must cost < 20 µs a query; the LoadGen
cross-check is `benchwatch.bench.loadgen_check` (same scenario, LoadGen's own figures).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from benchwatch.bench.backends import Backend, BackendError, BackendInfo
from benchwatch.bench.model_call import ModelCallMeter, ProbeReading, ProbeWindow, window
from benchwatch.bench.stats import min_queries, quantile
from benchwatch.bench.suites import Suite
from drift.figures import Figure

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (task, done, total)
PERCENTILES = (0.5, 0.9, 0.99)
CHUNK = 256  # progress is reported between chunks, never inside the timed loop


@dataclass(frozen=True)
class RunSettings:
    seed: int = 0
    warmup_queries: int = 100
    single_stream_queries: int = 2000
    offline_batch_size: int = 64
    offline_samples: int = 20_000
    offline_min_duration_s: float = 0.5  # cycle the batches until both are met
    single_stream_min_duration_s: float = 0.0  # repeat the queries until both are met
    server: bool = True
    server_latency_bound_s: float = 0.010
    server_percentile: float = 0.99
    server_step_s: float = 0.5
    server_max_steps: int = 8
    server_workers: int = 2
    server_max_qps: float = 100_000.0
    server_max_step_s: float = 20.0  # the slowest rate tried runs its queries in this long
    fixed_rates_qps: tuple[float, ...] = ()  # Poisson runs at these rates (scenario server_<R>qps)
    fixed_rate_queries: int = 0  # queries per fixed rate; 0: max(p99's minimum + 100, qps x step)


@dataclass(frozen=True)
class LatencySummary:
    n: int
    p50_s: float
    p90_s: float
    p99_s: float
    mean_s: float
    significant: dict[str, bool]  # "p90": True when n >= 64, ...

    @staticmethod
    def of(latencies_s: np.ndarray) -> LatencySummary:
        n = len(latencies_s)
        if n == 0:
            nan = float("nan")
            return LatencySummary(0, nan, nan, nan, nan, {f"p{_pct(q)}": False for q in PERCENTILES})
        p50, p90, p99 = (quantile(latencies_s, q) for q in PERCENTILES)
        return LatencySummary(n, p50, p90, p99, float(np.mean(latencies_s)),
                              {f"p{_pct(q)}": n >= min_queries(q) for q in PERCENTILES})


def _pct(q: float) -> str:
    return f"{q * 100:g}"


@dataclass(frozen=True)
class SingleStreamResult:
    latencies_s: np.ndarray = field(repr=False)
    summary: LatencySummary
    duration_s: float = math.nan  # wall time of the timed loop (its request rate: n / duration)


@dataclass(frozen=True)
class OfflineResult:
    samples: int
    batch_size: int
    duration_s: float
    throughput_qps: float
    energy_per_inference_j: float | None = None  # when run with an energy meter


@dataclass(frozen=True)
class ServerStep:
    target_qps: float
    queries: int
    p99_s: float
    achieved_qps: float
    errors: int
    passed: bool
    p50_s: float = math.nan
    p90_s: float = math.nan


@dataclass(frozen=True)
class FixedRateResult:
    """A Poisson run at a fixed target rate (latency from the scheduled arrival)."""

    target_qps: float
    achieved_qps: float
    errors: int
    latencies_s: np.ndarray = field(repr=False)
    summary: LatencySummary

    @property
    def scenario(self) -> str:
        return scenario_at(self.target_qps)


def scenario_at(qps: float) -> str:
    """The scenario name of a fixed-rate run: server_40qps, server_12_5qps."""
    return f"server_{qps:g}qps".replace(".", "_")


@dataclass(frozen=True)
class ServerResult:
    latency_bound_s: float
    percentile: float
    best_qps: float  # 0.0 when even the lowest rate missed the bound
    steps: tuple[ServerStep, ...]


@dataclass(frozen=True)
class AccuracyResult:
    n: int
    accuracy: float
    outputs: np.ndarray = field(repr=False)  # (n, k) raw scores in suite order


@dataclass(frozen=True)
class BenchResult:
    backend: BackendInfo
    suite: str
    suite_hash: str
    settings: RunSettings
    accuracy: AccuracyResult | None
    single_stream: SingleStreamResult | None
    offline: OfflineResult | None
    server: ServerResult | None
    error: str | None = None  # set when the run stopped early; results so far are kept
    energy_per_inference_j: float | None = None  # offline window, when an energy meter exists
    fixed_rate: tuple[FixedRateResult, ...] = ()
    # scenario -> what the probe counted in it (model_call point), when a meter was given
    model_call: Mapping[str, ProbeWindow] = field(default_factory=dict, repr=False)
    # figures measured apart from the scenarios (robustness, cost: benchwatch.bench.scorecard)
    extra_figures: tuple[Figure, ...] = ()

    @property
    def client_point(self) -> str:
        """Where the runner's own timer sits: the HTTP client, or around an in-process call."""
        return "http_client" if self.backend.name == "http" else "harness"

    def scenario_rates(self) -> dict[str, float]:
        """The request rate each latency scenario held (queries per second, achieved)."""
        out: dict[str, float] = {}
        ss = self.single_stream
        if ss and ss.summary.n and ss.duration_s > 0:
            out["single_stream"] = ss.summary.n / ss.duration_s
        best = self._best_server_step()
        if best is not None:
            out["server"] = best.achieved_qps
        for fr in self.fixed_rate:
            out[fr.scenario] = fr.achieved_qps
        return out

    def _best_server_step(self) -> ServerStep | None:
        if not self.server or not self.server.best_qps:
            return None
        return max((st for st in self.server.steps if st.passed and
                    st.target_qps == self.server.best_qps), key=lambda st: st.achieved_qps,
                   default=None)

    def figures(self) -> list[Figure]:
        """The baseline's figures, each at its measurement point and scenario (absent when
        unknown): client latencies (`http_client`/`harness`) and, with a model-call meter, the
        probe's (`model_call`) per latency scenario, with the rate the scenario held; offline
        throughput; device energy per inference (offline window); accuracy (`outputs`)."""
        out: list[Figure] = []
        client, rates = self.client_point, self.scenario_rates()

        def latencies(point: str, scenario: str, values: Mapping[str, float]) -> None:
            out.extend(Figure(k, v, point, scenario, rates.get(scenario))
                       for k, v in values.items() if math.isfinite(v))

        ss = self.single_stream
        if ss and ss.summary.n:
            s = ss.summary
            latencies(client, "single_stream", {"latency_p50_s": s.p50_s,
                                                "latency_p90_s": s.p90_s, "latency_p99_s": s.p99_s})
        best = self._best_server_step()
        if best is not None:
            latencies(client, "server", {"latency_p50_s": best.p50_s, "latency_p90_s": best.p90_s,
                                         "latency_p99_s": best.p99_s})
        for fr in self.fixed_rate:
            if fr.summary.n:
                latencies(client, fr.scenario, {"latency_p50_s": fr.summary.p50_s,
                                                "latency_p90_s": fr.summary.p90_s,
                                                "latency_p99_s": fr.summary.p99_s})
        for scenario, w in sorted(self.model_call.items()):
            if scenario == "offline":  # batched calls: not comparable with live requests
                continue
            latencies("model_call", scenario, w.quantiles())
            joules = w.energy_per_call_j()
            if joules is not None:
                out.append(Figure("energy_per_inference_j", joules, "model_call", scenario,
                                  rates.get(scenario)))
        if self.offline:
            out.append(Figure("throughput_qps", self.offline.throughput_qps, client, "offline",
                              self.offline.throughput_qps))
        if self.energy_per_inference_j is not None:
            out.append(Figure("energy_per_inference_j", self.energy_per_inference_j, "device",
                              "offline", self.offline.throughput_qps if self.offline else None))
        if self.accuracy and math.isfinite(self.accuracy.accuracy):
            out.append(Figure("accuracy", self.accuracy.accuracy, "outputs", "accuracy"))
        return out + list(self.extra_figures)


def query_order(n_rows: int, n_queries: int, seed: int) -> np.ndarray:
    """Seeded sequence of row indices: concatenated permutations (every row used evenly)."""
    rng = np.random.default_rng(seed)
    reps = math.ceil(n_queries / n_rows)
    if reps <= 0:  # no queries (e.g. --warmup 0)
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([rng.permutation(n_rows) for _ in range(reps)])[:n_queries]


def _rows(suite: Suite) -> list[np.ndarray]:
    return [suite.inputs[i : i + 1] for i in range(len(suite))]  # views, sliced once


def run_accuracy(backend: Backend, suite: Suite, batch_size: int = 64,
                 progress: Progress | None = None) -> AccuracyResult:
    outs = []
    for start in range(0, len(suite), batch_size):
        outs.append(np.asarray(backend.predict(suite.inputs[start : start + batch_size])))
        if progress:
            progress("accuracy", min(start + batch_size, len(suite)), len(suite))
    scores = np.concatenate(outs)
    if scores.ndim != 2 or scores.shape[0] != len(suite):
        raise BackendError("shape", f"backend returned outputs of shape {scores.shape} for "
                           f"{len(suite)} rows: expected ({len(suite)}, classes)")
    acc = float(np.mean(scores.argmax(1) == suite.expected)) if suite.task == "classification" else float("nan")
    return AccuracyResult(len(suite), acc, scores)


def timed_loop(predict: Callable[[np.ndarray], object], rows: list[np.ndarray],
               order: np.ndarray, progress: Progress | None = None,
               task: str = "single-stream") -> np.ndarray:
    """Latency of each query in seconds. The inner loop is all the harness costs per query."""
    n = len(order)
    lat_ns = np.empty(n, dtype=np.int64)
    pc = time.perf_counter_ns
    idx = order.tolist()
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        for j in range(start, stop):
            x = rows[idx[j]]
            t0 = pc()
            predict(x)
            lat_ns[j] = pc() - t0
        if progress:
            progress(task, stop, n)
    return lat_ns.astype(np.float64) / 1e9


def warm_up(backend: Backend, suite: Suite, settings: RunSettings) -> None:
    """The single-stream warm-up queries (not measured)."""
    warm = query_order(len(suite), settings.warmup_queries, settings.seed + 1)
    timed_loop(backend.predict, _rows(suite), warm)


def run_single_stream(backend: Backend, suite: Suite, settings: RunSettings,
                      progress: Progress | None = None, warmup: bool = True) -> SingleStreamResult:
    """Warm-up (unless done already: `warmup=False`), then the timed single-stream queries."""
    rows = _rows(suite)
    if warmup:
        warm_up(backend, suite, settings)
    order = query_order(len(suite), settings.single_stream_queries, settings.seed)
    t0 = time.perf_counter()
    lat = timed_loop(backend.predict, rows, order, progress)
    while time.perf_counter() - t0 < settings.single_stream_min_duration_s:  # same order again
        more = timed_loop(backend.predict, rows, order, progress, "single-stream (longer)")
        lat = np.concatenate([lat, more])
    return SingleStreamResult(lat, LatencySummary.of(lat), time.perf_counter() - t0)


def run_offline(backend: Backend, suite: Suite, settings: RunSettings,
                progress: Progress | None = None,
                energy: Callable[[], float] | None = None) -> OfflineResult:
    """Batched throughput; with an `energy` meter (cumulative joules), read around the timed
    loop only, also energy per inference."""
    order = query_order(len(suite), settings.offline_samples, settings.seed)
    bs = settings.offline_batch_size
    batches = [np.ascontiguousarray(suite.inputs[order[s : s + bs]])
               for s in range(0, len(order), bs)]
    for b in batches[:10]:  # warm-up (thread pools, allocator)
        backend.predict(b)
    done, i = 0, 0
    e0 = energy() if energy else 0.0
    t0 = time.perf_counter()
    while True:
        b = batches[i % len(batches)]
        backend.predict(b)
        done += len(b)
        i += 1
        if progress and i % 16 == 0:
            progress("offline", min(done, len(order)), len(order))
        if done >= len(order) and (i % 16 == 0 or i % len(batches) == 0):
            dt = time.perf_counter() - t0
            if dt >= settings.offline_min_duration_s:
                break
    joules = (energy() - e0) / done if energy else None
    if progress:
        progress("offline", len(order), len(order))
    return OfflineResult(done, bs, dt, done / dt, joules)


def run_server_step(backend: Backend, rows: list[np.ndarray], qps: float, n: int,
                    workers: int, seed: int) -> tuple[np.ndarray, float, int]:
    """One Poisson-arrival run: (latencies from scheduled arrival, achieved qps, errors)."""
    rng = np.random.default_rng(seed)
    sched_rel = np.cumsum(rng.exponential(1.0 / qps, size=n))
    order = rng.integers(0, len(rows), size=n).tolist()
    done = np.full(n, np.nan)
    q: queue.SimpleQueue[int] = queue.SimpleQueue()
    errors = [0]
    start = time.perf_counter() + 0.01
    sched = (sched_rel + start).tolist()

    def work() -> None:
        pc = time.perf_counter
        while (j := q.get()) >= 0:
            try:
                backend.predict(rows[order[j]])
            except Exception:  # noqa: BLE001 - counted; the step then fails
                errors[0] += 1
                continue
            done[j] = pc() - sched[j]

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    j = 0
    while j < n:
        now = time.perf_counter()
        while j < n and sched[j] <= now:  # issue everything due (late issues count as latency)
            q.put(j)
            j += 1
        if j < n:
            nap_before(sched[j])
    for _ in threads:
        q.put(-1)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = done[~np.isnan(done)]
    return lat, n / max(elapsed, 1e-9), errors[0]


def nap_before(at: float, most_s: float = math.inf) -> None:
    """Sleep until just before `at` (a `time.perf_counter()` time), for at most `most_s`; the
    caller's loop spins the last 0.1-0.2 ms. A timed sleep or wait to `at` itself wakes ~1 ms
    late at the median on a busy host, lateness that counts as latency from the scheduled
    arrival. One loop for the bench's fixed-rate scenario and the demo's traffic, so both load
    a server alike."""
    wait = at - time.perf_counter()
    if wait > 0.0002:
        time.sleep(min(wait - 0.0001, most_s))


def run_server(backend: Backend, suite: Suite, settings: RunSettings,
               first_guess_qps: float, progress: Progress | None = None,
               probe: ModelCallMeter | None = None) -> tuple[ServerResult, ProbeWindow | None]:
    """Find the highest Poisson rate meeting p{percentile} <= bound (doubling, then bisection);
    with a model-call meter, also what the probe counted during the best passing step."""
    rows = _rows(suite)
    need = min_queries(settings.server_percentile)
    lo, hi = 0.0, math.inf
    # a step needs `need + 100` queries: below this rate one step would take longer than
    # server_max_step_s, so the search stops there (best QPS 0: the bound missed even there)
    floor = (need + 100) / settings.server_max_step_s
    qps = max(floor, min(first_guess_qps, settings.server_max_qps))
    steps: list[ServerStep] = []
    best_window: ProbeWindow | None = None
    for step in range(settings.server_max_steps):
        n = max(need + 100, int(qps * settings.server_step_s))
        before = probe.read() if probe else None
        lat, achieved, errs = run_server_step(backend, rows, qps, n, settings.server_workers,
                                              settings.seed + 100 + step)
        w = window(before, probe.read()) if probe else None
        p = quantile(lat, settings.server_percentile) if len(lat) else math.inf
        ok = errs == 0 and len(lat) >= need and p <= settings.server_latency_bound_s
        if ok and qps > lo:
            best_window = w
        steps.append(ServerStep(qps, n, p, achieved, errs, ok,
                                *((quantile(lat, 0.5), quantile(lat, 0.9)) if len(lat)
                                  else (math.nan, math.nan))))
        log.debug("server step %d: %.0f qps -> p99 %.6fs %s", step, qps, p, ok)
        if progress:
            progress("server", step + 1, settings.server_max_steps)
        if ok:
            lo = qps
        else:
            hi = qps
        if hi / max(lo, 1e-9) < 1.1 or (ok and qps >= settings.server_max_qps) or (
                lo == 0 and qps <= floor):
            break
        qps = min(qps * 2, settings.server_max_qps) if hi == math.inf else (
            (lo + hi) / 2 if lo > 0 else max(qps / 4, floor))
    if progress:
        progress("server", len(steps), len(steps))
    return ServerResult(settings.server_latency_bound_s, settings.server_percentile, lo,
                        tuple(steps)), best_window


def run_fixed_rate(backend: Backend, suite: Suite, settings: RunSettings, qps: float,
                   seed: int) -> FixedRateResult:
    """Poisson arrivals at `qps` for `settings.fixed_rate_queries` queries, by default
    max(p99's minimum + 100, qps x server_step_s)."""
    n = settings.fixed_rate_queries or max(min_queries(0.99) + 100, int(qps * settings.server_step_s))
    lat, achieved, errs = run_server_step(backend, _rows(suite), qps, n, settings.server_workers,
                                          seed)
    return FixedRateResult(qps, achieved, errs, lat, LatencySummary.of(lat))


EnergyMeter = Callable[[], float]  # a cumulative energy counter in joules


def run_benchmark(backend: Backend, suite: Suite, settings: RunSettings,
                  progress: Progress | None = None,
                  energy: EnergyMeter | None = None,
                  probe: ModelCallMeter | None = None) -> BenchResult:
    """All scenarios on one backend; a backend failure stops the run but keeps what was done.

    With an `energy` meter (e.g. NVML's total-energy counter), the single-stream and offline
    windows run for at least 2 s (the counter moves about every 100 ms): the offline one gives
    the device's energy per inference, the single-stream one the probe's (a probed backend
    with `benchwatch.bench.energy.attribute_energy`) at the model_call point. With a
    model-call meter (`ScrapedProbe`, `ProbedBackend`), the probe's histogram is read around
    each latency scenario (`BenchResult.model_call`)."""
    acc = single = offline = server = None
    joules: float | None = None
    fixed: list[FixedRateResult] = []
    calls: dict[str, ProbeWindow] = {}
    if energy is not None:
        settings = replace(settings, offline_min_duration_s=max(2.0, settings.offline_min_duration_s),
                           single_stream_min_duration_s=max(2.0, settings.single_stream_min_duration_s))

    def measured(scenario: str, before: ProbeReading | None) -> None:
        if probe is not None:
            w = window(before, probe.read())
            if w is not None and w.calls > 0:
                calls[scenario] = w

    try:
        acc = run_accuracy(backend, suite, settings.offline_batch_size, progress)
        warm_up(backend, suite, settings)  # before the probe's window: it counts the timed only
        # the fixed rates (production's load) first, on the warmed server, so they are not
        # measured in the wake of the saturating scenarios (GC, allocator, a busy CPU)
        for i, qps in enumerate(settings.fixed_rates_qps):
            before = probe.read() if probe else None
            fixed.append(run_fixed_rate(backend, suite, settings, qps, settings.seed + 200 + i))
            measured(fixed[-1].scenario, before)
            if progress:
                progress("fixed rates", i + 1, len(settings.fixed_rates_qps))
        before = probe.read() if probe else None
        single = run_single_stream(backend, suite, settings, progress, warmup=False)
        measured("single_stream", before)
        before = probe.read() if probe else None
        offline = run_offline(backend, suite, settings, progress, energy)
        joules = offline.energy_per_inference_j
        measured("offline", before)
        if settings.server:
            guess = 0.5 * settings.server_workers / max(single.summary.p50_s, 1e-6)
            server, best = run_server(backend, suite, settings, guess, progress, probe)
            if best is not None and best.calls > 0:
                calls["server"] = best
    except BackendError as e:
        log.error("backend %s failed (%s): %s", backend.info.name, e.kind, e)
        return BenchResult(backend.info, suite.name, suite.content_hash, settings, acc, single,
                           offline, server, f"{e.kind}: {e}", joules, tuple(fixed), calls)
    return BenchResult(backend.info, suite.name, suite.content_hash, settings, acc, single,
                       offline, server, None, joules, tuple(fixed), calls)


def combine_repeats(runs: list[BenchResult]) -> BenchResult:
    """One result from repeats of the same backend: single-stream latencies pooled, offline
    throughput and server QPS as medians over repeats, accuracy from the first (deterministic)."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    lats = [r.single_stream.latencies_s for r in runs if r.single_stream]
    single = None
    if lats:
        pooled = np.concatenate(lats)
        single = SingleStreamResult(pooled, LatencySummary.of(pooled), sum(
            r.single_stream.duration_s for r in runs if r.single_stream))
    offs = [r.offline for r in runs if r.offline]
    offline = None
    if offs:
        med = float(np.median([o.throughput_qps for o in offs]))
        offline = OfflineResult(sum(o.samples for o in offs), offs[0].batch_size,
                                sum(o.duration_s for o in offs), med)
    servers = [r.server for r in runs if r.server]
    server = None
    if servers:
        server = ServerResult(servers[0].latency_bound_s, servers[0].percentile,
                              float(np.median([s.best_qps for s in servers])),
                              tuple(st for s in servers for st in s.steps))
    errors = [r.error for r in runs if r.error]
    joules = [r.energy_per_inference_j for r in runs if r.energy_per_inference_j is not None]
    calls: dict[str, ProbeWindow] = {}
    for r in runs:  # histograms pool bucket by bucket
        for scenario, w in r.model_call.items():
            calls[scenario] = calls[scenario] + w if scenario in calls else w
    return BenchResult(first.backend, first.suite, first.suite_hash, first.settings,
                       first.accuracy, single, offline, server, errors[0] if errors else None,
                       float(np.median(joules)) if joules else None,
                       _combine_fixed([r.fixed_rate for r in runs]), calls)


def _combine_fixed(per_run: list[tuple[FixedRateResult, ...]]) -> tuple[FixedRateResult, ...]:
    """Fixed-rate runs of the repeats by rate: latencies pooled, achieved rates as medians."""
    by_rate: dict[float, list[FixedRateResult]] = {}
    for runs in per_run:
        for fr in runs:
            by_rate.setdefault(fr.target_qps, []).append(fr)
    out = []
    for qps, frs in by_rate.items():
        pooled = np.concatenate([f.latencies_s for f in frs])
        out.append(FixedRateResult(qps, float(np.median([f.achieved_qps for f in frs])),
                                   sum(f.errors for f in frs), pooled, LatencySummary.of(pooled)))
    return tuple(out)
