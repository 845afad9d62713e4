"""Benchmarking generative (streaming) models on a text suite: time to first token (TTFT), time
per output token (TPOT), output tokens per second and, where an energy counter exists, joules
per output token, for in-process backends (PyTorch, ONNX Runtime) and a streaming HTTP endpoint.

A request is timed from the call to the first token (TTFT) and to its last; TPOT is (last −
first) / (tokens − 1), vLLM's definition, so a one-token answer has none. Single stream: one
request at a time, warm-up first, the suite's prompts in a seeded order (every backend the
same). The `model_call` point, where live monitoring measures: in process, the stream runs under
`@probe` of a private registry; over HTTP, the server's probe `/metrics` (`--probe-metrics`) is
read before and after the timed loop; TTFT/TPOT quantiles then come from the probe's histograms
as `histogram_quantile` computes them. The output pass (every prompt once, the suite's decoding)
gives the output features the drift service compares live outputs with: `output_tokens`, `stop_reason` (categorical),
`token_confidence` and `token_entropy` (per-token top-1 probability and entropy, averaged over
the request, where the backend exposes logits).
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchwatch import promtext
from benchwatch.bench.backends import BackendError, BackendInfo
from benchwatch.bench.energy import ModelCallEnergy
from benchwatch.bench.runner import Progress, query_order
from benchwatch.bench.stats import min_queries, quantile
from benchwatch.bench.text_suite import TextSuite
from benchwatch.errors import UsageError
from benchwatch.example import lm
from drift.figures import Figure
from probes import metric_names as m
from probes.buckets import GENAI_TOKEN_GRID_S
from probes.decorator import probe
from probes.errors import require
from probes.state import Registry

GEN_BACKENDS = ("onnxruntime", "torch", "http")
QUANTILES = (0.5, 0.9, 0.99)
# the output features of a generation (the live server samples the same names)
FEATURES = ("output_tokens", "stop_reason", "token_confidence", "token_entropy")


def generation_features(g: lm.Generation) -> dict[str, float | str | None]:
    """A generation's drift features; confidence/entropy None when it has no token."""
    def num(v: float) -> float | None:
        return v if math.isfinite(v) else None

    return {"output_tokens": float(g.output_tokens), "stop_reason": g.stop_reason,
            "token_confidence": num(g.mean_confidence), "token_entropy": num(g.mean_entropy)}


class GenBackend(Protocol):
    info: BackendInfo

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               seed: int) -> Iterator[lm.Token]: ...

    def close(self) -> None: ...


class InProcessLm:
    """The example language model in this process (torch or onnxruntime)."""

    def __init__(self, kind: str, files: lm.LmFiles | None = None, device: str = "cpu",
                 threads: int | None = None) -> None:
        self.files = files or lm.shipped_lm()
        self._step = lm.make_step(kind, self.files, device, threads)
        fw = require("torch" if kind == "torch" else "onnxruntime",
                     "torch" if kind == "torch" else "bench", f"the {kind} backend")
        where = device if kind == "torch" else (
            "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider")
        detail = f"{kind} {fw.__version__}, {where}"
        self.info = BackendInfo(kind, self.files.name, self.files.version, None, None, detail)
        self.devices = frozenset({"cpu", "gpu"} if device.startswith("cuda") else {"cpu"})

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               seed: int) -> Iterator[lm.Token]:
        return lm.generate(self._step, self.files.vocab, prompt, max_tokens, temperature, seed)

    def close(self) -> None:
        pass


class HttpLm:
    """POST {"prompt", "max_tokens", "temperature", "seed"} to URL/generate and read the
    server-sent events as they arrive: `{"token", "confidence", "entropy"}` per token, then
    `{"done": true, ...}` (the example LM server's protocol, `benchwatch.example.lm_server`).
    One keep-alive connection per calling thread."""

    def __init__(self, url: str, timeout_s: float = 10.0, path: str = "/generate") -> None:
        parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme != "http" or not parsed.hostname:
            raise BackendError("unreachable", f"{url!r} is not an http URL: pass e.g. "
                               "http://127.0.0.1:8000")
        self.url = f"http://{parsed.netloc}"
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._path = (parsed.path.rstrip("/") or "") + path
        self._timeout = timeout_s
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        meta = self._info()
        self.info = BackendInfo("http", str(meta.get("model", "unknown")),
                                str(meta.get("version", "")), None, None, self.url)

    def _conn(self) -> http.client.HTTPConnection:
        c: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def _drop(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
        self._local.conn = None

    def _open(self, method: str, body: bytes | None, path: str) -> http.client.HTTPResponse:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request(method, path, body=body, headers=headers)
                return c.getresponse()
            except TimeoutError as e:
                self._drop()
                raise BackendError("timeout", f"{self.url}{path}: no answer within "
                                   f"{self._timeout:.1f}s") from e
            except (ConnectionError, http.client.HTTPException, socket.gaierror, OSError) as e:
                self._drop()
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected,
                                                   ConnectionResetError, BrokenPipeError)):
                    continue  # a keep-alive connection the server closed: once more
                raise BackendError("unreachable", f"{self.url}{path}: {e}") from e
        raise BackendError("unreachable", f"{self.url}{path}: connection dropped twice")

    def _info(self) -> dict[str, Any]:
        resp = self._open("GET", None, "/info")
        data = resp.read()
        if resp.status != 200:
            return {}
        try:
            doc = json.loads(data)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               seed: int) -> Iterator[lm.Token]:
        body = json.dumps({"prompt": prompt, "max_tokens": max_tokens,
                           "temperature": temperature, "seed": seed}).encode()
        resp = self._open("POST", body, self._path)
        if resp.status != 200:
            data = resp.read()
            raise BackendError("http_status", f"{self.url}{self._path}: HTTP {resp.status} "
                               f"{data[:200]!r}")
        return self._events(resp)

    def _events(self, resp: http.client.HTTPResponse) -> Iterator[lm.Token]:
        done = False
        try:
            while True:
                try:
                    line = resp.readline()
                except TimeoutError as e:
                    raise BackendError("timeout", f"{self.url}{self._path}: the stream stalled "
                                       f"for {self._timeout:.1f}s") from e
                except (OSError, http.client.HTTPException) as e:
                    raise BackendError("unreachable", f"{self.url}{self._path}: {e}") from e
                if not line:
                    break
                if not line.startswith(b"data:"):
                    continue
                try:
                    ev = json.loads(line[5:])
                except ValueError as e:
                    raise BackendError("malformed", f"{self.url}{self._path}: event is not "
                                       f"JSON: {line[:200]!r}") from e
                if not isinstance(ev, dict):
                    raise BackendError("malformed", f"{self.url}{self._path}: event {ev!r}")
                if ev.get("done"):
                    done = True
                    continue
                if "error" in ev:
                    raise BackendError("http_status", f"{self.url}{self._path}: the stream "
                                       f"ended with an error: {ev['error']}")
                try:
                    yield lm.Token(str(ev["token"]), float(ev.get("confidence", math.nan)),
                                   float(ev.get("entropy", math.nan)))
                except (KeyError, TypeError, ValueError) as e:
                    raise BackendError("malformed", f"{self.url}{self._path}: token event "
                                       f"{ev!r}") from e
        finally:
            if not done:  # an unfinished chunked body: this connection cannot be reused
                self._drop()
        if not done:
            raise BackendError("malformed", f"{self.url}{self._path}: the stream ended "
                               "without its final event")

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()


# -- the model_call point -----------------------------------------------------------------------
@dataclass(frozen=True)
class StreamReading:
    """Cumulative probe histograms of streamed requests (upper bound -> count), and the output
    tokens and attributed joules so far (None: no counter)."""

    ttft: dict[float, float]
    tpot: dict[float, float]
    output_tokens: float = 0.0
    energy_j: float | None = None


class ProbedLm:
    """An in-process backend whose token stream runs under `@probe` of a private registry, as
    a server's would: the bench reads what the probe counted."""

    def __init__(self, backend: GenBackend) -> None:
        self.backend, self.info = backend, backend.info
        self.registry = Registry()
        self._state = self.registry.state(backend.info.model, backend.info.version or "unversioned")
        self._stream = probe(model=self._state.model, version=self._state.version, outputs=None,
                             registry=self.registry,
                             devices=getattr(backend, "devices", None))(self._tokens)  # as ProbedBackend
        self.energy: ModelCallEnergy | None = None  # set by attribute_energy with a counter

    def _tokens(self, prompt: str, max_tokens: int, temperature: float,
                seed: int) -> Iterator[lm.Token]:
        yield from self.backend.stream(prompt, max_tokens, temperature, seed)

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               seed: int) -> Iterator[lm.Token]:
        return self._stream(prompt, max_tokens, temperature, seed)

    def read(self) -> StreamReading:
        bounds = (*GENAI_TOKEN_GRID_S, math.inf)  # the cells the probe counts in (finer than classic)
        ttft, tpot = np.zeros(len(bounds)), np.zeros(len(bounds))
        tokens = 0
        for g in self._state.snapshot().totals.genai.values():
            ttft += g.ttft
            tpot += g.tpot
            tokens += g.out_tokens
        return StreamReading(dict(zip(bounds, np.cumsum(ttft).tolist(), strict=True)),
                             dict(zip(bounds, np.cumsum(tpot).tolist(), strict=True)),
                             float(tokens), self.energy.joules() if self.energy else None)

    def close(self) -> None:
        if self.energy:
            self.energy.close()
        self.backend.close()


class ScrapedStreams:
    """A served model's probe histograms of streamed requests, from its `/metrics`."""

    def __init__(self, metrics_urls: Sequence[str], model: str, version: str | None = None) -> None:
        self.urls = list(metrics_urls)  # one per worker of the server; their histograms add up
        self._match = {"model": model, **({"model_version": version} if version else {})}

    def read(self) -> StreamReading | None:
        try:
            s = promtext.read_summed(self.urls, 5.0)
        except (OSError, ValueError):
            return None
        ttft = promtext.buckets(s, m.GENAI_TTFT, **self._match)
        if not ttft:
            return None
        energy = s.get(m.ENERGY, **self._match)
        return StreamReading(ttft, promtext.buckets(s, m.GENAI_TPOT, **self._match),
                             s.total(m.GENAI_TOKENS, gen_ai_token_type="output", **self._match),
                             sum(energy.values()) if energy else None)


@dataclass(frozen=True)
class StreamWindow:
    """What the probe counted over the timed loop (two readings' difference)."""

    ttft: dict[float, float]
    tpot: dict[float, float]
    output_tokens: float
    energy_j: float | None

    @staticmethod
    def between(a: StreamReading, b: StreamReading) -> StreamWindow:
        energy = None if a.energy_j is None or b.energy_j is None else \
            max(b.energy_j - a.energy_j, 0.0)
        return StreamWindow(promtext.delta(b.ttft, a.ttft), promtext.delta(b.tpot, a.tpot),
                            b.output_tokens - a.output_tokens, energy)

    def quantiles(self) -> dict[str, float]:
        out = {}
        for what, hist in (("ttft", self.ttft), ("tpot", self.tpot)):
            n = max(hist.values(), default=0.0)
            for q in QUANTILES:
                v = promtext.quantile(q, hist)
                if v is not None and math.isfinite(v) and n >= min_queries(q):
                    out[f"{what}_p{q * 100:g}_s"] = v
        return out

    def __add__(self, other: StreamWindow) -> StreamWindow:
        """Two windows pooled (repeats): histograms add bucket by bucket."""
        def add(a: dict[float, float], b: dict[float, float]) -> dict[float, float]:
            return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in sorted(set(a) | set(b))}

        energy = None if self.energy_j is None or other.energy_j is None else \
            self.energy_j + other.energy_j
        return StreamWindow(add(self.ttft, other.ttft), add(self.tpot, other.tpot),
                            self.output_tokens + other.output_tokens, energy)

    @property
    def energy_per_output_token_j(self) -> float | None:
        if not self.energy_j or self.output_tokens <= 0:
            return None  # no counter, or it did not move
        return self.energy_j / self.output_tokens


def make_gen_backend(kind: str, model: str | None = None, url: str | None = None,
                     timeout_s: float = 10.0, threads: int | None = None,
                     device: str = "cpu") -> GenBackend:
    """`model`: the example (`lm`, `charlm`, or the classifier default `digits`, taken to mean
    the example) or a directory holding charlm.onnx + charlm.json (a retrained model)."""
    if kind == "http":
        if not url:
            raise UsageError("--backend http needs --url http://HOST:PORT (the streaming server)")
        return HttpLm(url, timeout_s)
    if kind not in GEN_BACKENDS:
        raise UsageError(f"backend {kind!r} cannot run a text suite: choose one of "
                         f"{', '.join(GEN_BACKENDS)}")
    if model in (None, "digits", "example", "lm", lm.MODEL_NAME):
        files = lm.shipped_lm()
    else:
        path = Path(model)
        if not (path.is_dir() and (path / lm.META_FILE).exists()):
            raise UsageError(f"--model {model}: for a text suite pass `lm` (the example language "
                             f"model) or a directory with {lm.ONNX_FILE} and {lm.META_FILE} "
                             "(python -m benchwatch.example.lm_train --out DIR)")
        files = lm.read_lm(path)
    if device.startswith("cuda"):  # said here, not as a silent fallback to the CPU
        if kind == "torch" and not require("torch", "torch", "the torch backend").cuda.is_available():
            raise UsageError("--device cuda: PyTorch sees no CUDA device")
        ort = require("onnxruntime", "bench", "the onnxruntime backend")
        if kind == "onnxruntime" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UsageError("--device cuda: this onnxruntime has no CUDAExecutionProvider "
                             f"(has {ort.get_available_providers()}): install onnxruntime-gpu")
    return InProcessLm(kind, files, device, threads)


# -- one request -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timed:
    ttft_s: float  # nan when no token came
    tpot_s: float  # nan with fewer than two tokens
    tokens: int
    duration_s: float
    generation: lm.Generation


def timed_request(backend: GenBackend, prompt: str, max_tokens: int, temperature: float,
                  seed: int) -> Timed:
    """One request, timed from the call to the first and the last token."""
    pc = time.perf_counter
    got: list[lm.Token] = []
    t0 = pc()
    first = last = math.nan
    for tok in backend.stream(prompt, max_tokens, temperature, seed):
        last = pc()
        if not got:
            first = last
        got.append(tok)
    end = pc()
    n = len(got)
    return Timed(first - t0, (last - first) / (n - 1) if n > 1 else math.nan, n, end - t0,
                 lm.summarize(got, prompt, max_tokens))


# -- the benchmark -----------------------------------------------------------------------------
@dataclass(frozen=True)
class GenSettings:
    seed: int = 0
    warmup_queries: int = 20
    queries: int = 1000


@dataclass(frozen=True)
class GenResult:
    backend: BackendInfo
    suite: str
    suite_hash: str
    settings: GenSettings
    ttft_s: np.ndarray = field(repr=False)
    tpot_s: np.ndarray = field(repr=False)  # nan where a request had < 2 tokens
    tokens: np.ndarray = field(repr=False)
    duration_s: np.ndarray = field(repr=False)
    wall_s: float
    outputs: tuple[lm.Generation, ...] = field(repr=False)  # the output pass, suite order
    energy_j: float | None = None  # over the timed loop, when a counter exists
    error: str | None = None
    model_call: StreamWindow | None = None  # what the probe counted over the timed loop

    @property
    def client_point(self) -> str:
        return "http_client" if self.backend.name == "http" else "harness"

    @property
    def output_tokens_per_s(self) -> float:
        busy = float(np.sum(self.duration_s))
        return float(np.sum(self.tokens)) / busy if busy > 0 else math.nan

    @property
    def energy_per_output_token_j(self) -> float | None:
        total = int(np.sum(self.tokens))
        return self.energy_j / total if self.energy_j is not None and total else None

    def quantiles(self, what: str) -> dict[str, float]:
        a = self.ttft_s if what == "ttft" else self.tpot_s
        a = a[np.isfinite(a)]
        return {f"{what}_p{q * 100:g}_s": quantile(a, q) for q in QUANTILES
                if len(a) >= min_queries(q)}

    def figures(self) -> list[Figure]:
        """TTFT/TPOT quantiles and output tokens/s at the client point (single stream, with the
        request rate it held), J per output token from the device counter."""
        n = len(self.ttft_s)
        rate = n / self.wall_s if self.wall_s > 0 else None
        point = self.client_point
        out = [Figure(k, v, point, "single_stream", rate)
               for what in ("ttft", "tpot") for k, v in self.quantiles(what).items()
               if math.isfinite(v)]
        if math.isfinite(self.output_tokens_per_s):
            out.append(Figure("output_tokens_per_s", self.output_tokens_per_s, point,
                              "single_stream", rate))
        j = self.energy_per_output_token_j
        if j is not None:
            out.append(Figure("energy_per_output_token_j", j, "device", "single_stream", rate))
        w = self.model_call
        if w is not None:
            out.extend(Figure(k, v, "model_call", "single_stream", rate)
                       for k, v in w.quantiles().items())
            if w.energy_per_output_token_j is not None:
                out.append(Figure("energy_per_output_token_j", w.energy_per_output_token_j,
                                  "model_call", "single_stream", rate))
        return out

    def features(self) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {k: [] for k in FEATURES}
        for g in self.outputs:
            for k, v in generation_features(g).items():
                cols[k].append(v)
        return cols


def output_pass(backend: GenBackend, suite: TextSuite, seed: int,
                progress: Progress | None = None,
                out: list[lm.Generation] | None = None) -> tuple[lm.Generation, ...]:
    """Every prompt once with the suite's decoding (the baseline's output features), appended
    to `out` as they come (what a stopped run keeps). Progress after every prompt: a bounded
    run (`--max-duration-s`) stops between requests."""
    got = [] if out is None else out
    for i, prompt in enumerate(suite.prompts):
        toks = list(backend.stream(prompt, suite.max_tokens, suite.temperature, seed + i))
        got.append(lm.summarize(toks, prompt, suite.max_tokens))
        if progress:
            progress("outputs", i + 1, len(suite))
    return tuple(got)


def run_generative(backend: GenBackend, suite: TextSuite, settings: GenSettings,
                   progress: Progress | None = None,
                   energy: Callable[[], float] | None = None,
                   probe_meter: Callable[[], StreamReading | None] | None = None) -> GenResult:
    """The output pass, warm-up, then single-stream requests; progress is reported after every
    request. A backend failure, or a `progress` that raises BackendError (the CLI's
    `--max-duration-s`, kind `overtime`), stops the run with what was measured kept (`error`):
    the outputs so far and, when the timed loop had begun, its requests, wall time, device
    energy and probe window up to the stop. `probe_meter`: reads the probe's histograms around
    the timed loop (the model_call point; `ProbedLm.read`, `ScrapedStreams.read`)."""
    n = settings.queries
    ttft, tpot = np.full(n, np.nan), np.full(n, np.nan)
    tokens, dur = np.zeros(n, dtype=np.int64), np.full(n, np.nan)
    outputs: list[lm.Generation] = []
    done, wall, joules, error = 0, 0.0, None, None
    window: StreamWindow | None = None
    mt, temp = suite.max_tokens, suite.temperature
    t0: float | None = None
    before: StreamReading | None = None
    e0 = 0.0
    try:
        output_pass(backend, suite, settings.seed, progress, outputs)
        warm = query_order(len(suite), settings.warmup_queries, settings.seed + 1)
        for k, i in enumerate(warm.tolist()):
            timed_request(backend, suite.prompts[i], mt, temp, settings.seed + i)
            if progress:
                progress("warm-up", k + 1, len(warm))
        order = query_order(len(suite), n, settings.seed)
        before = probe_meter() if probe_meter else None
        e0 = energy() if energy else 0.0
        t0 = time.perf_counter()
        for j, i in enumerate(order.tolist()):
            r = timed_request(backend, suite.prompts[i], mt, temp, settings.seed + i)
            ttft[j], tpot[j], tokens[j], dur[j] = r.ttft_s, r.tpot_s, r.tokens, r.duration_s
            done = j + 1
            if progress:
                progress("single-stream", done, n)
    except BackendError as e:
        error = f"{e.kind}: {e} (after {len(outputs)} of {len(suite)} output-pass prompts, " \
                f"{done} of {n} requests)"
    if t0 is not None:  # the timed loop ran, whole or in part: its wall, energy, probe window
        wall = time.perf_counter() - t0
        joules = (energy() - e0) if energy else None
        after = probe_meter() if probe_meter else None
        if before is not None and after is not None:
            window = StreamWindow.between(before, after)
    return GenResult(backend.info, suite.name, suite.content_hash, settings, ttft[:done],
                     tpot[:done], tokens[:done], dur[:done], wall, tuple(outputs), joules, error,
                     window)


def build_gen_baseline(r: GenResult, suite: TextSuite, version: str | None = None,
                       seed: int = 0) -> Any:
    """A `drift.Baseline` from the output pass's features and the run's figures."""
    from drift.baseline import Baseline

    if not r.outputs:
        raise ValueError("no output pass: nothing to build a baseline from")
    return Baseline.build(r.backend.model, version or r.backend.version or "unversioned",
                          r.features(), r.figures(), seed=seed,
                          source=f"benchwatch bench --backend {r.backend.name} --suite "
                                 f"{suite.name} ({suite.content_hash})")


def result_dict(r: GenResult) -> dict[str, Any]:
    def fin(v: float | None) -> float | None:
        return v if v is not None and math.isfinite(v) else None

    feats = r.features()
    stops: dict[str, int] = {}
    for s in feats["stop_reason"]:
        stops[str(s)] = stops.get(str(s), 0) + 1
    return {
        "backend": r.backend.name, "detail": r.backend.detail, "model": r.backend.model,
        "version": r.backend.version, "error": r.error, "requests": int(len(r.ttft_s)),
        "output_tokens": int(np.sum(r.tokens)), "wall_s": r.wall_s,
        "ttft": {k: fin(v) for k, v in r.quantiles("ttft").items()},
        "tpot": {k: fin(v) for k, v in r.quantiles("tpot").items()},
        "output_tokens_per_s": fin(r.output_tokens_per_s),
        "energy_per_output_token_j": r.energy_per_output_token_j,  # device, idle included
        # what the probe counted over the timed loop (model_call point; energy above idle)
        "model_call": None if r.model_call is None else {
            **r.model_call.quantiles(), "output_tokens": r.model_call.output_tokens,
            "energy_per_output_token_j": r.model_call.energy_per_output_token_j},
        "outputs": {"n": len(r.outputs), "stop_reason_counts": dict(sorted(stops.items())),
                    "output_tokens_mean": fin(float(np.mean(feats["output_tokens"])))
                    if r.outputs else None},
        "figures": [f.to_dict() for f in r.figures()],
    }


def write_gen_run(out_dir: Path, suite: TextSuite, results: Sequence[GenResult],
                  settings: Mapping[str, Any], baseline_version: str | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """results.json, latencies.npz (per request TTFT/TPOT/tokens per backend) and one baseline
    per backend that produced outputs."""
    import logging
    import platform

    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": "benchwatch-bench/1", "task": "generation", "suite": suite.name,
        "suite_hash": suite.content_hash,
        "model": results[0].backend.model if results else None, "settings": dict(settings),
        "host": f"{platform.node()} · {platform.processor() or platform.machine()} · "
                f"python {platform.python_version()}",
        "runs": [result_dict(r) for r in results], "baselines": {}}
    arrays = {f"{r.backend.name}_{k}": v for r in results
              for k, v in (("ttft_s", r.ttft_s), ("tpot_s", r.tpot_s), ("tokens", r.tokens))}
    np.savez_compressed(out_dir / "latencies.npz", **arrays)  # type: ignore[arg-type]
    for r in results:
        if not r.outputs:
            continue
        try:
            path = build_gen_baseline(r, suite, baseline_version, seed).save(
                out_dir / f"baseline-{r.backend.name}.json")
            doc["baselines"][r.backend.name] = str(path)
        except Exception as e:  # noqa: BLE001 - a baseline failure must not lose the run
            logging.getLogger(__name__).error("no baseline for %s: %s", r.backend.name, e)
            doc["baselines"][r.backend.name] = f"error: {e}"
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc
