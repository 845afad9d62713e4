"""`probe(model=..., version=...)`: the decorator, context manager and model wrapper.

Per call the probe takes two `perf_counter_ns` readings and increments counters in the calling
thread's shard (see `probes.state`); OpenTelemetry objects are built only at export. Anything
after the user's function returned (output statistics, batch size, sampling) runs inside
`try/except Exception` and is counted as a fault: the caller gets exactly the return value or
the exception it would have got without the probe.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import sys
import time
from bisect import bisect_left
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from time import perf_counter_ns as perf_counter_ns  # exported: energy tests swap it
from typing import Any, TypeVar, cast

import numpy as np

from probes.buckets import BATCH_GRID, LATENCY_GRID_NS
from probes.energy import module_devices, parse_devices, session_devices
from probes.errors import ConfigError
from probes.exemplars import note as note_exemplar
from probes.ort_outputs import classifier_scores
from probes.samples import Feature
from probes.sampling import MAX_SAMPLE_ROWS, READY_ROWS, InputRows, build_samples, input_rows
from probes.slices import DEFAULT_MAX_SLICES, Slicer, wrap_sliced
from probes.state import DEFAULT_REGISTRY, MAX_LABEL_LEN, ProbeState, Registry, Shard
from probes.stats import TOO_WIDE, OutputSpec, record_output
from probes.streaming import wrap_asyncgen, wrap_gen
from probes.summarize import MAX_ROW_VALUES, SummarizeError, as_array, summarize_output

__all__ = ["MAX_SAMPLE_ROWS", "Probe", "ProbeSpan", "probe"]

log = logging.getLogger("probes")
T = TypeVar("T")

_OUTPUT_KINDS = ("auto", "classifier", "regression")
# Output types "auto" reads; torch.Tensor is added once torch has been imported (never import it here).
_ARRAY_TYPES: set[type] = {np.ndarray}


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"probe {what} must be a non-empty string, got {value!r}: "
                               f"@probe(model=\"digits\", version=\"v3\")")
    if len(value) > MAX_LABEL_LEN:
        raise ConfigError(f"probe {what} {value[:20]!r}... is {len(value)} characters; at most {MAX_LABEL_LEN}")
    return value


def _note_torch() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        _ARRAY_TYPES.add(torch.Tensor)


class Probe:
    """What `probe(...)` returns: apply it to a function, async function, generator, PyTorch
    module or ONNX Runtime session, or use it as a context manager."""

    def __init__(
        self,
        model: str,
        version: str,
        outputs: OutputSpec = "auto",
        inputs: Callable[..., InputRows] | None = None,
        batch_size: Callable[..., int] | None = None,
        registry: Registry | None = None,
        devices: str | Iterable[str] | None = None,
        output_tokens: Callable[[Any], int] | None = None,
        input_tokens: Callable[..., int] | None = None,
        operation: str = "text_completion",
        slice: Callable[..., str] | None = None,  # noqa: A002 - the documented keyword
        max_slices: int = DEFAULT_MAX_SLICES,
    ) -> None:
        self.model = _check_name(model, "model")
        self.version = _check_name(version, "version")
        if not (outputs is None or callable(outputs) or outputs in _OUTPUT_KINDS):
            raise ConfigError(
                f"outputs must be one of {_OUTPUT_KINDS}, None or a callable returning {{name: number}}; "
                f"got {outputs!r}")
        if inputs is not None and not callable(inputs):
            raise ConfigError(f"inputs must be None or a callable(*args, **kwargs) -> {{name: value}}, got {inputs!r}")
        if batch_size is not None and not callable(batch_size):
            raise ConfigError(f"batch_size must be None (auto from the first argument's shape) or a "
                                   f"callable(*args, **kwargs) -> int, got {batch_size!r}")
        if output_tokens is not None and not callable(output_tokens):
            raise ConfigError(f"output_tokens must be None (each streamed item is one token) or a "
                              f"callable(item) -> int, got {output_tokens!r}")
        if input_tokens is not None and not callable(input_tokens):
            raise ConfigError(f"input_tokens must be None or a callable(*args, **kwargs) -> int, got {input_tokens!r}")
        self.output_tokens = output_tokens
        self.input_tokens = input_tokens
        self.operation = _check_name(operation, "operation")  # gen_ai.operation.name of streams
        declared = parse_devices(devices)
        self.outputs = outputs
        self.inputs = inputs
        self.batch_size = batch_size
        self.devices = declared
        self.registry = registry if registry is not None else DEFAULT_REGISTRY
        self.state: ProbeState = self.registry.state(self.model, self.version)
        if declared is not None:  # the energy sampler charges this model these devices only
            self.state.devices = lambda: declared
        self._span: contextvars.ContextVar[ProbeSpan | None] = contextvars.ContextVar(
            f"benchwatch_probe_{id(self)}", default=None)
        self.slicer = None if slice is None else Slicer(self, slice, max_slices)
        _note_torch()

    # ---- what happens after the user's call returned (never raises) ----
    def _after(self, sh: Shard, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any], dt_ns: int) -> None:
        spec = self.outputs
        if spec is not None and (spec != "auto" or type(out) in _ARRAY_TYPES):
            try:
                record_output(self.state, sh, out, spec)
            except Exception as e:
                self.registry.faults.record("output_stats", e, f"{self.model}/{self.version}:")
        if self.batch_size is None:
            if args and type(args[0]) in _ARRAY_TYPES:  # exact numpy/torch types: shape is safe
                shape = args[0].shape
                if shape:
                    n = shape[0]
                    sh.batch[bisect_left(BATCH_GRID, n)] += 1
                    sh.batch_sum += n
        else:
            try:
                n = int(self.batch_size(*args, **kwargs))
                sh.batch[bisect_left(BATCH_GRID, n)] += 1
                sh.batch_sum += n
            except Exception as e:
                self.registry.faults.record("batch_size", e, f"{self.model}/{self.version}:")
        if self.registry.exemplars:
            note_exemplar(sh, dt_ns)
        rate = self.registry.sample_rate
        if rate and self.registry.rng.random() < rate:
            self._sample(out, args, kwargs, dt_ns)

    def _sample(self, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any], dt_ns: int) -> None:
        """A sampled call: on this (the serving) thread only what cannot wait, i.e. the time,
        the inputs callable (its arguments are the caller's) and a private copy of the kept
        output rows; the drain thread summarizes them and builds the Samples."""
        reg = self.registry
        try:
            queue = reg.sample_queue
            if queue is None:
                return
            inp: dict[str, Feature] | list[dict[str, Feature]] | None = None
            if self.inputs is not None:
                try:  # one mapping for the call, or one per row of a batch
                    inp = input_rows(self.inputs(*args, **kwargs))
                except Exception as e:
                    reg.faults.record("inputs", e, f"{self.model}/{self.version}:")
            spec = self.outputs
            now = time.time()
            if callable(spec):  # user code reading the caller's object: must run now
                data: Any = [{k: float(v) for k, v in spec(out).items()}]
                kind: Any = READY_ROWS
                n, nbytes = 1, 0
            elif spec is None:  # no outputs: one sample per input row
                data = [{} for _ in inp] if isinstance(inp, list) else [{}]
                kind, n, nbytes = READY_ROWS, len(data), 0
            else:
                data, n, nbytes = _kept_copy(out, spec)
                kind = spec
                if data is None:  # a row wider than MAX_ROW_VALUES: nothing copied, counted
                    count_dropped = getattr(queue, "count_dropped", None)
                    if count_dropped is not None:
                        count_dropped(TOO_WIDE, n)
                    return
            offer_snapshot = getattr(queue, "offer_snapshot", None)
            if offer_snapshot is not None:
                offer_snapshot(n, nbytes, self.model, self.version, now, dt_ns / 1e9, data, kind, inp)
            else:  # a queue that takes finished Samples only: build them here
                queue.offer(build_samples((n, nbytes, self.model, self.version, now, dt_ns / 1e9,
                                           data, kind, inp)))
        except Exception as e:
            reg.faults.record("sampling", e, f"{self.model}/{self.version}:")

    def _error(self, sh: Shard, exc: BaseException | str) -> None:
        try:
            et = self.state.error_types.get(exc if isinstance(exc, str) else type(exc).__name__)
            sh.errors[et] = sh.errors.get(et, 0) + 1
        except Exception as e:  # pragma: no cover - defensive: never mask the user's exception
            self.registry.faults.record("output_stats", e)

    # ---- application ----
    def __call__(self, target: T) -> T:
        if self.slicer is not None:  # fairness slices: plain and async functions (probes/slices.py)
            if _is_torch_module(target) or _is_ort_session(target) or \
                    inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
                raise ConfigError("slice= works on functions and async functions: wrap the call "
                                  "to the module, session or generator in one")
            if callable(target):
                return cast(T, wrap_sliced(self, target, self.slicer,
                                           inspect.iscoroutinefunction(target)))
        if _is_torch_module(target):
            return cast(T, self._wrap_torch(target))
        if _is_ort_session(target):
            return cast(T, self._wrap_ort(target))
        if inspect.isasyncgenfunction(target):
            return cast(T, self._wrap_asyncgen(target))
        if inspect.iscoroutinefunction(target):
            return cast(T, self._wrap_async(target))
        if inspect.isgeneratorfunction(target):
            return cast(T, self._wrap_gen(target))
        if callable(target):
            return cast(T, self._wrap_sync(target))
        raise ConfigError(
            f"@probe cannot wrap a {type(target).__name__}: use it on a function, async function, generator, "
            "torch.nn.Module or onnxruntime.InferenceSession, or as `with probe(...) as p:`")

    def _wrap_sync(self, fn: Callable[..., Any], select: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
        local = self.state.local
        bounds = LATENCY_GRID_NS
        after = self._after
        error = self._error
        faults = self.registry.faults

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sh = local.shard
            t0 = perf_counter_ns()
            sh.in_flight += 1
            sh.t0_sum += t0
            try:
                out = fn(*args, **kwargs)
            except BaseException as e:
                dt = perf_counter_ns() - t0
                sh.in_flight -= 1
                sh.t0_sum -= t0
                sh.err[bisect_left(bounds, dt)] += 1
                sh.err_sum += dt
                error(sh, e)
                raise
            dt = perf_counter_ns() - t0
            sh.in_flight -= 1
            sh.t0_sum -= t0
            sh.ok[bisect_left(bounds, dt)] += 1
            sh.ok_sum += dt
            try:  # belt and braces: _after already guards each step
                after(sh, out if select is None else _safe_select(select, out), args, kwargs, dt)
            except Exception as e:
                faults.record("output_stats", e)
            return out

        wrapper.__benchwatch_probe__ = self  # type: ignore[attr-defined]
        return wrapper

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        local = self.state.local
        bounds = LATENCY_GRID_NS
        after = self._after
        error = self._error
        faults = self.registry.faults

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            sh = local.shard  # a coroutine resumes on its loop's thread: same shard at the end
            t0 = perf_counter_ns()
            sh.in_flight += 1
            sh.t0_sum += t0
            try:
                out = await fn(*args, **kwargs)
            except BaseException as e:
                dt = perf_counter_ns() - t0
                sh.in_flight -= 1
                sh.t0_sum -= t0
                sh.err[bisect_left(bounds, dt)] += 1
                sh.err_sum += dt
                error(sh, e)
                raise
            dt = perf_counter_ns() - t0
            sh.in_flight -= 1
            sh.t0_sum -= t0
            sh.ok[bisect_left(bounds, dt)] += 1
            sh.ok_sum += dt
            try:
                after(sh, out, args, kwargs, dt)
            except Exception as e:
                faults.record("output_stats", e)
            return out

        wrapper.__benchwatch_probe__ = self  # type: ignore[attr-defined]
        return wrapper

    def _start(self) -> tuple[int, Shard]:
        sh = self.state.local.shard
        t0 = perf_counter_ns()
        sh.in_flight += 1
        sh.t0_sum += t0
        return t0, sh

    def _finish(self, t0: int, exc: BaseException | str | None) -> tuple[Shard, int]:
        # Generators and spans may end on another thread: write to *that* thread's shard
        # (sums across shards stay right; no shard is ever written by two threads).
        sh = self.state.local.shard
        dt = perf_counter_ns() - t0
        sh.in_flight -= 1
        sh.t0_sum -= t0
        if exc is None:
            sh.ok[bisect_left(LATENCY_GRID_NS, dt)] += 1
            sh.ok_sum += dt
        else:
            sh.err[bisect_left(LATENCY_GRID_NS, dt)] += 1
            sh.err_sum += dt
            self._error(sh, exc)
        return sh, dt

    def _wrap_gen(self, fn: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Generator[Any, Any, Any]]:
        """A streamed request: first `next()` to exhaustion (or close()), TTFT/TPOT/tokens
        (probes.streaming)."""
        return wrap_gen(self, fn)

    def _wrap_asyncgen(self, fn: Callable[..., AsyncGenerator[Any, Any]]) -> Callable[..., AsyncGenerator[Any, Any]]:
        return wrap_asyncgen(self, fn)

    def _wrap_torch(self, module: Any) -> Any:
        """Wraps `module.forward` in place (same object back, so `isinstance`, `.to()`,
        `state_dict()` and hooks are untouched)."""
        if getattr(module.forward, "__benchwatch_probe__", None) is not None:
            raise ConfigError(f"{type(module).__name__} is already probed")
        if self.devices is None:  # read by the energy sampler each interval: follows .to(device)
            self.state.devices = lambda: module_devices(module)
        object.__setattr__(module, "forward", self._wrap_sync(module.forward))
        return module

    def _wrap_ort(self, session: Any) -> Any:
        """Wraps `session.run` in place; statistics read the class scores (`probes.ort_outputs`)."""
        if getattr(session.run, "__benchwatch_probe__", None) is not None:
            raise ConfigError("this InferenceSession is already probed")
        if self.devices is None:
            try:
                found = session_devices(session)
                self.state.devices = lambda: found
            except Exception as e:  # an unusual session object: charge every device
                self.registry.faults.record("sampler", e, f"{self.model}/{self.version} devices:")
        # statistics read the scores: skl2onnx classifiers put labels first, probabilities second
        session.run = self._wrap_sync(session.run, select=classifier_scores)
        return session

    # ---- context manager ----
    def __enter__(self) -> ProbeSpan:
        span = ProbeSpan(self)
        span._token = self._span.set(span)
        return span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        span = self._span.get()
        if span is None:  # pragma: no cover - unbalanced use
            return
        if span._token is not None:
            self._span.reset(span._token)
        span._end(exc)


class ProbeSpan:
    """One timed block (`with probe(...) as p:`); `p.observe(output)` adds output statistics."""

    __slots__ = ("_done", "_output", "_probe", "_t0", "_token")

    def __init__(self, probe_: Probe) -> None:
        self._probe = probe_
        self._output: Any = None
        self._done = False
        self._token: contextvars.Token[ProbeSpan | None] | None = None
        self._t0, _ = probe_._start()

    def observe(self, output: Any) -> None:
        """Record `output` for statistics/sampling when the block ends (never raises)."""
        self._output = output

    def _end(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        sh, dt = self._probe._finish(self._t0, exc)
        if exc is None and self._output is not None:
            try:
                self._probe._after(sh, self._output, (), {}, dt)
            except Exception as e:
                self._probe.registry.faults.record("output_stats", e)


def _one_row(ndim: int, integer: bool, spec: str) -> bool:
    """A 1-D non-integer output read as a classifier is one row of scores, not many rows."""
    return ndim == 1 and spec == "classifier" and not integer


def _kept_copy(out: Any, spec: str) -> tuple[Any, int, int]:
    """(a private copy of the output rows that become Samples, how many Samples, its bytes);
    (None, Samples lost, 0) when one row is wider than MAX_ROW_VALUES: nothing is copied.

    Only the first rows are copied, at most MAX_SAMPLE_ROWS and at most MAX_ROW_VALUES numbers
    in all (summarizing a 4096-row batch to keep 64 cost the serving thread the other 4032; 64
    rows of a 152 064-word vocabulary would be a 39 MB copy), and they are copied because the
    caller owns the output and may reuse its buffer as soon as we return. Torch tensors: a
    detached host copy (the drain thread's `summarize_output` converts dtypes exactly as
    before). Lists and numbers become a fresh float64 array, as `summarize_output` reads them."""
    torch = None if type(out) is np.ndarray else sys.modules.get("torch")
    if torch is not None and isinstance(out, torch.Tensor):
        t = out.detach()
        integer = not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)
        keep = _kept_rows(tuple(t.shape), integer, spec)
        if not keep:
            return None, _rows(t.ndim, t.shape, integer, spec), 0
        if t.ndim >= 1 and t.shape[0] > keep and not _one_row(t.ndim, integer, spec):
            t = t[:keep]
        t = t.clone() if t.device.type == "cpu" else t.cpu()  # .cpu() of a CPU tensor is no copy
        return t, _rows(t.ndim, t.shape, integer, spec), t.element_size() * t.nelement()
    if isinstance(out, np.ndarray):
        integer = out.dtype.kind in "iu"
        keep = _kept_rows(out.shape, integer, spec)
        if not keep:
            return None, _rows(out.ndim, out.shape, integer, spec), 0
        if out.ndim == 2 and out.dtype.kind in "fiub":  # the common case: (rows, columns)
            a = out[:keep].copy() if out.shape[0] > keep else out.copy()
            return a, a.shape[0], a.nbytes
        a = out
        if a.ndim >= 1 and a.shape[0] > keep and not _one_row(a.ndim, integer, spec):
            a = a[:keep]
        a = a.copy()
    else:
        a = as_array(out)  # lists, tuples, numbers: a new array; anything else raises (a fault)
        integer = a.dtype.kind in "iu"
        keep = _kept_rows(a.shape, integer, spec)
        if not keep:
            return None, _rows(a.ndim, a.shape, integer, spec), 0
        if a.ndim >= 1 and a.shape[0] > keep and not _one_row(a.ndim, integer, spec):
            a = a[:keep].copy()  # don't hold the whole converted list
    if a.dtype.kind not in "fiub":
        summarize_output(a, spec)  # type: ignore[arg-type]  # raises its own clear error here
    return a, _rows(a.ndim, a.shape, integer, spec), a.nbytes


def _kept_rows(shape: tuple[int, ...], integer: bool, spec: str) -> int:
    """Rows of an output of this shape a sampled call copies: at most MAX_SAMPLE_ROWS and
    MAX_ROW_VALUES numbers in all; 0 when one row alone is wider."""
    if len(shape) > 2:  # before any copy: summarize_output would refuse it on the drain thread
        raise SummarizeError(f"output has shape {shape}; expected (rows,) or (rows, columns)")
    if not shape:
        return 1
    if _one_row(len(shape), integer, spec):
        return 1 if shape[0] <= MAX_ROW_VALUES else 0
    width = shape[1] if len(shape) == 2 else 1
    return min(MAX_SAMPLE_ROWS, MAX_ROW_VALUES // max(width, 1))


def _rows(ndim: int, shape: Any, integer: bool, spec: str) -> int:
    """How many Samples `summarize_output` makes of an output of this shape (capped)."""
    if ndim == 0 or _one_row(ndim, integer, spec):
        return 1
    return min(int(shape[0]), MAX_SAMPLE_ROWS)


def _safe_select(select: Callable[[Any], Any], out: Any) -> Any:
    try:
        return select(out)
    except Exception:
        return None


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_ort_session(obj: Any) -> bool:
    ort = sys.modules.get("onnxruntime")
    return ort is not None and isinstance(obj, ort.InferenceSession)


def probe(
    model: str,
    version: str,
    *,
    outputs: OutputSpec = "auto",
    inputs: Callable[..., InputRows] | None = None,
    batch_size: Callable[..., int] | None = None,
    registry: Registry | None = None,
    devices: str | Iterable[str] | None = None,
    output_tokens: Callable[[Any], int] | None = None,
    input_tokens: Callable[..., int] | None = None,
    operation: str = "text_completion",
    slice: Callable[..., str] | None = None,  # noqa: A002 - the documented keyword
    max_slices: int = DEFAULT_MAX_SLICES,
) -> Probe:
    """Measure every call: `@probe(model="digits", version="v3")` on a function, async function,
    generator, `probe(...)(torch_module)`, `probe(...)(ort_session)`, or `with probe(...) as p:`.

    outputs: "auto" (numpy/torch arrays: 2-D → classifier, else regression), "classifier",
    "regression", None (no statistics) or a callable returning {name: number}.
    inputs: callable(*args, **kwargs) -> {name: value}, used only for sampled summaries.
    batch_size: callable(*args, **kwargs) -> int; default: first argument's `shape[0]`.
    devices: which energy devices the model may be charged: "cpu", "gpu" (types), "gpu0" (an
    id) or a list; default: a PyTorch module's or ORT session's own devices, else every device.
    Generator and async generator functions are streamed (generative) requests: time to first
    token, time per output token, duration and tokens (docs/probes.md). output_tokens:
    callable(item) -> int, tokens in one yielded item (default 1); input_tokens:
    callable(*args, **kwargs) -> int, the prompt's tokens; operation: gen_ai.operation.name.
    slice: callable(*args, **kwargs) -> str naming the call's fairness slice (latency, errors
    and output statistics get a `slice` label); at most `max_slices` values, later ones count
    as "_other" (probes/slices.py). Functions and async functions only.
    """
    return Probe(model, version, outputs=outputs, inputs=inputs, batch_size=batch_size, registry=registry,
                 devices=devices, output_tokens=output_tokens, input_tokens=input_tokens,
                 operation=operation, slice=slice, max_slices=max_slices)
