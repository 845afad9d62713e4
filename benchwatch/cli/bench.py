"""`benchwatch bench`: benchmark a model on a suite with LoadGen-like scenarios, side by side
across backends; the run is written as results JSON, an HTML report and drift baselines."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from benchwatch.cli import _endpoint
from benchwatch.cli._values import http_url, number, seconds, whole
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError
from probes.errors import BenchwatchError, require

HELP = "benchmark a model on a suite (LoadGen-like scenarios); the run becomes a baseline"
log = logging.getLogger(__name__)


MAX_QUERIES = 10_000_000  # per scenario: more is hours of benchmarking and GBs of latencies


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="digits",
                   help="an .onnx file (torch: a .pt state_dict of the example architecture), "
                        "or `digits` for the example model that ships with benchwatch")
    p.add_argument("--backend", action="append", choices=("onnxruntime", "torch", "http", "null"),
                   help="repeat for a side-by-side run, e.g. --backend onnxruntime --backend "
                        "torch (default: onnxruntime)")
    p.add_argument("--url", type=http_url,
                   help="endpoint for --backend http, e.g. http://127.0.0.1:8000")
    p.add_argument("--probe-metrics", metavar="URL", default=None, type=http_url,
                   action="append",
                   help="--backend http: the server's probe /metrics endpoint, e.g. "
                        "http://127.0.0.1:9464/metrics; its model-call histogram is read around "
                        "each scenario, so the baseline has figures at the point live "
                        "monitoring measures (in-process backends are probed automatically). "
                        "Repeat it for each worker of a multi-worker server (9464, 9465, ...): "
                        "their histograms are added up")
    p.add_argument("--scrape-every", type=number(0, 3600, low_inclusive=True, unit="seconds"),
                   default=15.0,
                   metavar="S",
                   help="with --probe-metrics: read them every S s during the run as Prometheus "
                        "scrapes production (default 15, deploy/prometheus.yml's interval), so "
                        "the baseline's tail holds the scrapes' cost as the live one does; 0 "
                        "when a Prometheus already scrapes that server")
    p.add_argument("--rate", dest="rates", type=number(1e-3, 1e6), action="append", default=None,
                   metavar="QPS", help="also run Poisson arrivals at this fixed request rate "
                   "(repeatable; scenario server_<QPS>qps): give the rate production serves, "
                   "so the latency alert has a baseline figure at a like load")
    p.add_argument("--suite", default="digits", help="built-in name (digits; text: "
                   "the generative example, TTFT/TPOT) or path to SUITE.json")
    p.add_argument("-o", "--out", "--output", dest="output", default="runs",
                   help="directory for the run's files (default ./runs)")
    p.add_argument("--queries", type=whole(1, MAX_QUERIES), default=2000,
                   help="single-stream queries (>= 662 for a significant p99)")
    p.add_argument("--warmup", type=whole(0, MAX_QUERIES), default=100,
                   help="warm-up queries, not measured")
    p.add_argument("--batch-size", type=whole(1, 1_000_000), default=64, help="offline batch size")
    p.add_argument("--offline-samples", type=whole(1, 100 * MAX_QUERIES), default=None,
                   help="offline scenario samples (default 100000; 5000 with --backend http)")
    p.add_argument("--max-duration-s", type=seconds, default=600.0,
                   help="each backend run stops here with what it measured (default 600 s; "
                        "the defaults against a loopback HTTP endpoint take well under that)")
    p.add_argument("--latency-bound-ms", type=number(0, 1e6), default=10.0,
                   help="server scenario: p99 bound for the QPS search")
    p.add_argument("--server-step-s", type=seconds, default=0.5)
    p.add_argument("--server-workers", type=whole(1, 1024), default=2,
                   help="server scenario: concurrent workers (raise for HTTP endpoints)")
    p.add_argument("--no-server", action="store_true", help="skip the server (Poisson) scenario")
    p.add_argument("--threads", type=whole(1, 1024), default=None,
                   help="intra-op threads per backend")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (torch; onnxruntime-gpu)")
    p.add_argument("--timeout-s", type=seconds, default=5.0, help="HTTP timeout per request")
    p.add_argument("--seed", type=whole(0, 2**64 - 1), default=0)
    p.add_argument("--name", default=None,
                   help="the model's name in the baselines, as your probe labels it (default: "
                        "the endpoint's GET /info, the .onnx file's stem, or digits)")
    p.add_argument("--version", "--baseline-version", dest="baseline_version", default=None,
                   help="the model's version in the baselines, as your probe labels it "
                        "(default: GET /info, or the example model's hash; --backend http "
                        "without /info needs it)")
    p.add_argument("--energy", choices=("auto", "gpu", "cpu", "off"), default="auto",
                   help="energy per inference over the offline window: GPU via NVML when "
                        "present (auto), CPU package via RAPL (cpu), or off")
    p.add_argument("--loadgen-check", action="store_true",
                   help="also drive each backend with mlperf_loadgen (SingleStream) and report "
                        "its figures beside ours")
    p.add_argument("--repeats", type=whole(1, 1000), default=1,
                   help="run every backend this many times, alternating; latencies are pooled, "
                        "throughputs are medians")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars: a one-line status every 10 s instead")
    scorecard_arguments(p)
    _endpoint.add_arguments(p)


def scorecard_arguments(p: argparse.ArgumentParser) -> None:
    """The scorecard's options: robustness and cost (benchwatch.bench.scorecard)."""
    p.add_argument("--no-robustness", action="store_true",
                   help="skip the corruption set and the flip rate under tiny noise")
    p.add_argument("--robustness-reference", metavar="MODEL.onnx", default=None,
                   help="the model corruption errors are normalised to (default: the suite's; "
                        "for digits the example model)")
    p.add_argument("--price-usd-per-hour", type=number(0, 1e6, low_inclusive=True), default=None,
                   help="what the serving instance costs per hour: gives $ per 1 000 inferences")
    p.add_argument("--price-usd-per-kwh", type=number(0, 1e3, low_inclusive=True), default=None,
                   help="what energy costs: adds the measured J/inference to the $ figures")
    p.add_argument("--grid-threads", type=_counts, default=None, metavar="N[,N...]",
                   help="intra-op thread counts of the throughput grid (default 1,2)")
    p.add_argument("--grid-batch-sizes", type=_counts, default=None, metavar="N[,N...]",
                   help="batch sizes of the throughput grid (default 1,16,64)")
    p.add_argument("--no-grid", action="store_true",
                   help="skip the backend x threads x batch size throughput grid")
    p.add_argument("--accuracy-target", type=number(0, 1), default=None,
                   help="accuracy the cost-to-target needs (default: the suite's "
                        "accuracy_target, 0.95 for digits)")


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch.bench.text_suite import is_text_suite

    if is_text_suite(args.suite):  # a generative model: TTFT/TPOT (benchwatch.bench.gen_cli)
        from benchwatch.bench.gen_cli import run_text_bench

        return run_text_bench(args)
    require("rich", "bench", "benchwatch bench")
    from rich.console import Console

    from benchwatch.bench.artifacts import new_run_dir, write_run
    from benchwatch.bench.energy import attribute_energy, energy_meter, with_model_call
    from benchwatch.bench.scorecard import print_scorecard
    from benchwatch.bench.suites import load_suite

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    settings = _settings(args)
    suite = load_suite(args.suite)
    meter, meter_desc = energy_meter(args.energy)
    log.info("energy: %s", meter_desc)
    kinds = args.backend or ["onnxruntime"]
    if args.probe_metrics and "http" not in kinds:
        raise UsageError("--probe-metrics is for --backend http (in-process backends are "
                         "probed by the bench itself)")
    backends = _open_backends(kinds, suite, args)
    try:
        probes = _model_call_meters(backends, args, console)
        attributed = attribute_energy(backends.values(), meter, console.print)  # model_call J
        meter_desc = with_model_call(meter_desc, attributed)
        results = _measure(backends, suite, settings, meter, probes, args)
        loadgen = _loadgen_check(backends, results, suite, args, console)
        results, cards, skipped = _scorecards(backends, results, suite, args, console)
    finally:
        for b in backends.values():
            b.close()
    grid = _grid(kinds, suite, settings, args)
    out_dir = new_run_dir(args.output, results[0].backend.model)
    doc = write_run(out_dir, suite, results, {**settings.__dict__, "repeats": args.repeats,
                                               "energy": meter_desc},
                    args.baseline_version, extra={"scorecard": [c.to_dict() for c in cards],
                                                  "grid": [c.to_dict() for c in grid],
                                                  **({"loadgen": loadgen} if loadgen else {}),
                                                  **({"stopped": skipped} if skipped else {})})
    _print_results(doc, suite, results, meter is not None, args.seed, console)
    print_scorecard(cards, f"scorecard: {doc['model']} on {suite.name}", meter is not None)
    _write_comparison(out_dir, doc, args.output)
    console.print(f"wrote {out_dir}/results.json, report.html, compare.html, latencies.npz, "
                  f"baselines: {', '.join(doc['baselines'].values()) or 'none'}")
    return finished(results, out_dir, skipped)


def finished(results: list[Any], out_dir: Any, passes: list[str] | None = None) -> ExitCode:
    """OK, or the backends (and `passes`, e.g. a robustness pass) that stopped early; their
    partial results are already written."""
    stopped = [f"{r.backend.name}: {r.error}" for r in results if r.error] + (passes or [])
    if stopped:
        raise BenchwatchError(f"stopped early ({'; '.join(stopped)}); the partial results are "
                              f"in {out_dir}")
    return ExitCode.OK


def _settings(args: argparse.Namespace) -> Any:
    from benchwatch.bench.runner import RunSettings

    if args.offline_samples is None:  # an endpoint serves ~1 000 batches/s, not 1 M rows/s
        args.offline_samples = 5_000 if "http" in (args.backend or ()) else 100_000
    if min(args.queries, args.batch_size, args.offline_samples, args.repeats) < 1 or args.warmup < 0:
        raise UsageError("--queries, --batch-size, --offline-samples and --repeats must be >= 1, "
                         "--warmup >= 0")
    rates = tuple(args.rates or ())
    if any(not (0 < r < 1e6) for r in rates):
        raise UsageError(f"--rate must be a request rate between 0 and 1e6 per second, got {rates}")
    return RunSettings(
        seed=args.seed, warmup_queries=args.warmup, single_stream_queries=args.queries,
        offline_batch_size=args.batch_size, offline_samples=args.offline_samples,
        server=not args.no_server, server_latency_bound_s=args.latency_bound_ms / 1000,
        server_step_s=args.server_step_s, server_workers=max(1, args.server_workers),
        fixed_rates_qps=rates)


def _open_backends(kinds: list[str], suite: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One backend per kind, each checked against the suite; none left open on an error."""
    from benchwatch.bench.backends import make_backend
    from benchwatch.bench.model_call import ProbedBackend
    from benchwatch.bench.suites import check_fits

    backends: dict[str, Any] = {}
    endpoint = _endpoint.options(args, suite) if "http" in kinds else {}
    try:
        for kind in kinds:
            backend = backends[kind] = make_backend(
                kind, args.model, args.url, args.timeout_s, args.threads, args.device,
                args.name, args.baseline_version, **(endpoint if kind == "http" else {}))
            check_fits(suite, backend.info.input_shape, backend.info.num_outputs)
            if kind != "http" and not backend.info.version:  # a model file of yours
                raise UsageError(f"{args.model}: the model's version is not known: pass "
                                 f"--version V (and --name, default {backend.info.model!r}), "
                                 "the labels your probe uses (@probe(model=..., version=...)), "
                                 "so the baseline meets live traffic")
            if kind == "http":  # before any measuring: who it is, and that it takes the suite
                _endpoint.require_identity(backend, args.url)
                _endpoint.check_accepts(backend, suite, args.url)
            if kind != "http":  # in process: the bench's own @probe gives the model_call point
                backends[kind] = ProbedBackend(backend)
    except BaseException:
        for b in backends.values():
            b.close()
        raise
    return backends


def _model_call_meters(backends: dict[str, Any], args: argparse.Namespace,
                       console: Any) -> dict[str, Any]:
    """Per backend, what reads its model-call histogram (None: not measured, said once)."""
    from benchwatch.bench.model_call import ProbedBackend, ScrapedProbe

    out: dict[str, Any] = {}
    for kind, b in backends.items():
        if isinstance(b, ProbedBackend):
            out[kind] = b
        elif args.probe_metrics:
            probe = ScrapedProbe(args.probe_metrics, b.info.model, b.info.version or None)
            if probe.read() is None:
                raise UsageError(f"--probe-metrics {probe.url}: no readable "
                                 f"benchwatch_inference_duration_seconds series of "
                                 f"{b.info.model} {b.info.version}: pass the /metrics URL of "
                                 "the probes in the server behind --url")
            out[kind] = probe
        else:
            out[kind] = None
            console.print(f"{kind}: no model_call figures (pass --probe-metrics URL, the "
                          "server's probe /metrics): live latency alerts will find no "
                          "baseline figure at the model-call point")
    return out


def _measure(backends: dict[str, Any], suite: Any, settings: Any, meter: Any,
             probes: dict[str, Any], args: argparse.Namespace) -> list[Any]:
    """Every backend `args.repeats` times; the results of one backend's repeats combined."""
    from benchwatch.bench.progress import rich_progress
    from benchwatch.bench.runner import combine_repeats, run_benchmark

    kinds = list(backends)
    per_kind: dict[str, list[Any]] = {k: [] for k in kinds}
    # repeats rotate the backend order, so load on a shared machine hits every backend alike
    for rep in range(args.repeats):
        for kind in kinds[rep % len(kinds):] + kinds[: rep % len(kinds)]:
            label = f"{kind} " if args.repeats == 1 else f"{kind} #{rep + 1} "
            with rich_progress(label, enabled=not args.no_progress) as progress, \
                    read_as_prometheus(args, kind):
                bounded = _bounded(progress, args.max_duration_s)
                per_kind[kind].append(run_benchmark(backends[kind], suite, settings, bounded,
                                                    meter, probes[kind]))
    return [combine_repeats(per_kind[k]) for k in kinds]


def read_as_prometheus(args: argparse.Namespace, kind: str) -> Any:
    """While the `http` backend runs, its server's --probe-metrics read every --scrape-every s
    (`bench.model_call.read_every`); nothing for an in-process backend."""
    from benchwatch.bench.model_call import read_every

    return read_every((args.probe_metrics or []) if kind == "http" else [], args.scrape_every)


def _bounded(progress: Any, limit_s: float,
             fewer: str = "fewer --queries/--offline-samples, --no-server") -> Any:
    """The progress callback, which also ends the run once it has taken `limit_s`: the runner
    reports progress between chunks of queries, never inside a timed call, and keeps what was
    measured when a backend stops (kind `overtime`). `fewer`: the options that shorten it."""
    import time

    from benchwatch.bench.backends import BackendError

    deadline = time.monotonic() + limit_s

    def update(task: str, done: int, total: int) -> None:
        progress(task, done, total)
        if done < total and time.monotonic() > deadline:
            shorter = "--no-robustness" if task == "robustness" else fewer
            raise BackendError("overtime", f"--max-duration-s {limit_s:g} reached in {task} "
                               f"({done}/{total}): {shorter}, or a longer --max-duration-s")

    return update


def _scorecards(backends: dict[str, Any], results: list[Any], suite: Any,
                args: argparse.Namespace, console: Any,
                ) -> tuple[list[Any], list[Any], list[str]]:
    """Robustness per backend (unless --no-robustness) and cost (with a price): the results
    with those as baseline figures, one scorecard row per backend, and the robustness passes
    that stopped early."""
    from benchwatch.bench import robustness
    from benchwatch.bench.backends import BackendError
    from benchwatch.bench.cost import Prices
    from benchwatch.bench.scorecard import scorecards

    rob: dict[str, Any] = {}
    skipped: list[str] = []
    if not args.no_robustness and suite.task == "classification":
        ref = robustness.reference_errors(suite, args.seed, args.robustness_reference)
        if ref is None:
            console.print(f"suite {suite.name}: no reference model, so no mCE (pass "
                          "--robustness-reference MODEL.onnx); mean corruption error reported")
        for r in results:
            if r.error is None and r.backend.name != "null":
                try:
                    rob[r.backend.name] = _robustness(backends[r.backend.name], suite, ref, args)
                except BackendError as e:
                    skipped.append(f"{r.backend.name} robustness: {e}")
                    console.print(f"{r.backend.name} robustness: stopped ({e}); the run is "
                                  "written without it")
    prices = Prices(args.price_usd_per_hour, args.price_usd_per_kwh)
    if not prices.configured:
        console.print("no price configured: pass --price-usd-per-hour (and --price-usd-per-kwh) "
                      "for $ per 1 000 inferences")
    return (*scorecards(results, suite, rob, prices, args.accuracy_target), skipped)


def _robustness(backend: Any, suite: Any, ref: Any, args: argparse.Namespace) -> Any:
    """One backend's robustness pass, with the scenarios' progress and --max-duration-s. An
    endpoint gets it as it gets the accuracy pass (same mapping or adapter, same batches)."""
    from benchwatch.bench import robustness
    from benchwatch.bench.progress import rich_progress

    with rich_progress(f"{backend.info.name} ", enabled=not args.no_progress) as progress:
        return robustness.measure(backend.predict, suite, args.seed, ref,
                                  _bounded(progress, args.max_duration_s))


def _counts(text: str) -> tuple[int, ...]:
    """`1,2,4` -> (1, 2, 4): whole numbers in [1, 4096], at most 16 of them."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole "
                                         "numbers, like 1,2,4") from None
    if not values or len(values) > 16 or not all(1 <= v <= 4096 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to 16 numbers in [1, 4096]")
    return values


def _grid(kinds: list[str], suite: Any, settings: Any, args: argparse.Namespace) -> list[Any]:
    """The throughput grid over backend x threads x batch size (unless --no-grid)."""
    from benchwatch.bench.grid import DEFAULT_BATCH_SIZES, DEFAULT_THREADS, run_grid

    if args.no_grid:
        return []
    return run_grid(kinds, args.model, suite, args.grid_threads or DEFAULT_THREADS,
                    args.grid_batch_sizes or DEFAULT_BATCH_SIZES, settings, args.device)


def _write_comparison(out_dir: Any, doc: dict[str, Any], root: str) -> None:
    """compare.html: scorecard, radar, throughput heatmap, and the model's versions so far
    (every baseline of this model under the output directory, this run's included)."""
    from benchwatch.report.compare import compare_html, load_history

    history = load_history(root, doc["model"]) if doc.get("model") else []
    (out_dir / "compare.html").write_text(compare_html(doc, doc.get("grid") or [], history))


def _loadgen_check(backends: dict[str, Any], results: list[Any], suite: Any,
                   args: argparse.Namespace, console: Any) -> dict[str, Any]:
    """With --loadgen-check: mlperf_loadgen's SingleStream figures beside ours, per backend."""
    if not args.loadgen_check:
        return {}
    from benchwatch.bench.loadgen_check import compare_with_runner, run_loadgen

    loadgen = {}
    for r in results:
        if r.single_stream is None:
            continue
        lg = run_loadgen(backends[r.backend.name], suite, "SingleStream", args.queries,
                         min_duration_s=0.5)
        lg["ratio_to_runner"] = compare_with_runner(r.single_stream.latencies_s, lg)
        loadgen[r.backend.name] = lg
        console.print(f"mlperf_loadgen SingleStream on {r.backend.name}: " + ", ".join(
            f"{k.removesuffix('_s')} {v:.3f}x ours" for k, v in lg["ratio_to_runner"].items() if v))
    return loadgen


def _print_results(doc: dict[str, Any], suite: Any, results: list[Any], energy: bool, seed: int,
                   console: Any) -> None:
    """The results table on stdout, each backend's ratios to the first on stderr."""
    from rich.console import Console
    from rich.table import Table

    from benchwatch.report.bench import fmt_s

    table = Table(title=f"{doc['model']} on {suite.name} ({len(suite)} rows, seed {seed})")
    cols = ["backend", "p50", "p90", "p99", "offline samples/s", "server QPS", "accuracy"]
    # above idle: the probe's single-stream J per call (what live monitoring attributes);
    # device: the counter over the offline window per inference, idle included
    for col in cols + (["J/inference above idle (single-stream)", "J/inference device (offline)"] if energy else []):
        table.add_column(col, justify="right")
    for r in results:
        s = r.single_stream.summary if r.single_stream else None
        above = next((f.value for f in r.figures() if (f.name, f.point, f.scenario) ==
                      ("energy_per_inference_j", "model_call", "single_stream")), None)
        table.add_row(
            r.backend.name, fmt_s(s.p50_s) if s else "–", fmt_s(s.p90_s) if s else "–",
            (fmt_s(s.p99_s) + ("" if s.significant["p99"] else " (n.s.)")) if s else "–",
            f"{r.offline.throughput_qps:,.0f}" if r.offline else "–",
            f"{r.server.best_qps:,.0f}" if r.server else "–",
            f"{r.accuracy.accuracy:.4f}" if r.accuracy else "–",
            *([f"{v:.3g}" if v is not None else "–" for v in (above, r.energy_per_inference_j)]
              if energy else []))
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    for r in results:
        calls = {f.name: f.value for f in r.figures()
                 if f.point == "model_call" and f.scenario == "single_stream"}
        if calls:
            console.print(f"{r.backend.name} model call (probe, single-stream): " + ", ".join(
                f"{k.removeprefix('latency_').removesuffix('_s')} {fmt_s(v)}"
                for k, v in calls.items() if k.startswith("latency_")))
    ref = results[0]

    def client(r: Any) -> dict[str, float]:  # the runner's own figures: like for like across backends
        return {f.name: f.value for f in r.figures()
                if f.scenario in ("single_stream", "offline") and f.point in ("http_client", "harness")}

    for r in results[1:]:
        mine, theirs = client(r), client(ref)
        console.print(f"{r.backend.name} / {ref.backend.name}: " + ", ".join(
            f"{k.replace('latency_', '').replace('_s', '')} x{v / theirs[k]:.2f}"
            for k, v in mine.items() if theirs.get(k)))
