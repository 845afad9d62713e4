"""Probing generator functions: a streamed (generative) request per generator.

`@probe(...)` on a generator or async generator function returns a generator of the same kind
that hands every item through unchanged (and forwards `send`/`throw`/`close`, and
`asend`/`athrow`/`aclose`, as `yield from` would) and, when the stream ends, records one
request (`probes.genai`): time to first token (first `next()` to the first item), time per
output token ((last item - first item) / output tokens after the first item: vLLM's
definition), the duration, and the tokens. Per item it costs one `perf_counter_ns` and an
increment (an `output_tokens` callable adds its own cost); everything else runs once, at the
end, and never raises into the consumer: the consumer gets every item, return value and
exception exactly as from the bare generator.

Outcomes: exhausted -> ok; an exception from the generator -> error (and the probe's
`benchwatch.inference.errors` by type); closed early by the consumer (`close()`, `break`, a
client disconnect, a cancelled task) -> cancelled, which is not an error.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Callable, Generator
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from probes import genai
from probes.genai import CANCELLED, ERROR, OK
from probes.sampling import READY_ROWS, build_samples, input_rows

if TYPE_CHECKING:
    from probes.decorator import Probe

__all__ = ["count_input_tokens", "count_tokens", "end_stream", "sampled_items", "wrap_asyncgen", "wrap_gen"]


def count_input_tokens(p: Probe, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """`input_tokens(*args, **kwargs)`, or 0 (and a counted fault) when absent or it fails."""
    if p.input_tokens is None:
        return 0
    try:
        return int(p.input_tokens(*args, **kwargs))
    except Exception as e:
        p.registry.faults.record("tokens", e, f"{p.model}/{p.version} input_tokens:")
        return 0


def count_tokens(p: Probe, count: Callable[[Any], int], item: Any) -> int:
    try:
        return int(count(item))
    except Exception as e:
        p.registry.faults.record("tokens", e, f"{p.model}/{p.version} output_tokens:")
        return 1  # the item is still one token of the stream


def sampled_items(p: Probe) -> list[Any] | None:
    """At a stream's start: whether it is sampled for drift (`sample_rate`). A sampled stream
    gets a list that keeps its items when `outputs=` is a callable (it reads them at the end),
    else the shared empty `_NOT_KEPT`; None: not sampled (nothing kept per item)."""
    reg = p.registry
    rate = reg.sample_rate
    if not rate or reg.rng.random() >= rate:
        return None
    return [] if callable(p.outputs) else _NOT_KEPT


_NOT_KEPT: list[Any] = []  # sampled, items not needed (shared, never appended to)


def end_stream(p: Probe, t0: int, first: int, last: int, tokens: int, first_tokens: int,
               in_tokens: int, outcome: int, exc: BaseException | str | None,
               args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
               kept: list[Any] | None = None) -> None:
    """Record one finished stream (never raises). `first`/`last`: perf_counter_ns of the first
    and last item (0: no item); `tokens`: output tokens, `first_tokens` of them in the first item;
    `kept`: a sampled stream's items (`sampled_items`), None when not sampled."""
    try:
        sh, dt = p._finish(t0, exc if outcome == ERROR else None)
        ttft = first - t0 if first else -1
        tpot = (last - first) / (tokens - first_tokens) if first and tokens > first_tokens else -1.0
        genai.record(sh.genai, p.operation, ttft, tpot, dt, outcome, in_tokens, tokens)
        if kept is not None and outcome == OK:  # a cut-short stream would bias output lengths
            _sample(p, tokens, kept, args, kwargs or {}, dt)
    except Exception as e:  # pragma: no cover - defensive: a probe never raises into the stream
        p.registry.faults.record("output_stats", e, f"{p.model}/{p.version} stream:")


def _sample(p: Probe, tokens: int, kept: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            dt_ns: int) -> None:
    """A sampled stream becomes one Sample: output feature `output_tokens` plus what
    `outputs(items)` returns when it is a callable; inputs from the probe's `inputs=`."""
    reg = p.registry
    try:
        queue = reg.sample_queue
        if queue is None:
            return
        inp: dict[str, Any] | list[dict[str, Any]] = {}
        if p.inputs is not None:
            try:  # one mapping (a list must hold one: a stream is one output row)
                inp = input_rows(p.inputs(*args, **kwargs))
            except Exception as e:
                reg.faults.record("inputs", e, f"{p.model}/{p.version}:")
        row: dict[str, Any] = {"output_tokens": float(tokens)}
        if callable(p.outputs):
            row.update(p.outputs(kept))
        entry = (1, 0, p.model, p.version, time.time(), dt_ns / 1e9, [row], READY_ROWS, inp or None)
        offer_snapshot = getattr(queue, "offer_snapshot", None)
        if offer_snapshot is not None:
            offer_snapshot(*entry)
        else:
            queue.offer(build_samples(entry))
    except Exception as e:
        reg.faults.record("sampling", e, f"{p.model}/{p.version}:")


def wrap_gen(p: Probe, fn: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Generator[Any, Any, Any]]:
    count = p.output_tokens

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = fn(*args, **kwargs)
        send = gen.send  # send(None) is next(): one bound call per item, no branch
        t0, _ = p._start()  # the first next(): the request starts here
        n_in = count_input_tokens(p, args, kwargs) if p.input_tokens is not None else 0
        kept = sampled_items(p)
        keep = kept.append if kept is not None and kept is not _NOT_KEPT else None
        first = last = n = n_first = 0
        try:
            item = send(None)
            first = last = perf_counter_ns()
            n = n_first = 1 if count is None else count_tokens(p, count, item)
            if keep is not None:
                keep(item)
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as e:  # thrown in by the consumer: the generator decides
                    item = gen.throw(e)
                else:
                    item = send(sent)
                last = perf_counter_ns()
                if count is None:
                    n += 1
                else:
                    n += count_tokens(p, count, item)
                if keep is not None:
                    keep(item)
        except StopIteration as stop:
            end_stream(p, t0, first, last, n, n_first, n_in, OK, None, args, kwargs, kept)
            return stop.value
        except GeneratorExit:  # the consumer closed it early (disconnect, break): not an error
            try:
                gen.close()
            except BaseException as e:
                end_stream(p, t0, first, last, n, n_first, n_in, ERROR, e, args, kwargs, kept)
                raise
            end_stream(p, t0, first, last, n, n_first, n_in, CANCELLED, None, args, kwargs, kept)
            raise
        except BaseException as e:
            end_stream(p, t0, first, last, n, n_first, n_in, ERROR, e, args, kwargs, kept)
            raise

    wrapper.__benchwatch_probe__ = p  # type: ignore[attr-defined]
    return wrapper


def wrap_asyncgen(p: Probe, fn: Callable[..., AsyncGenerator[Any, Any]]) -> Callable[..., AsyncGenerator[Any, Any]]:
    count = p.output_tokens

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = fn(*args, **kwargs)
        asend = agen.asend  # asend(None) is __anext__()
        t0, _ = p._start()
        n_in = count_input_tokens(p, args, kwargs) if p.input_tokens is not None else 0
        kept = sampled_items(p)
        keep = kept.append if kept is not None and kept is not _NOT_KEPT else None
        first = last = n = n_first = 0
        try:
            item = await asend(None)
            first = last = perf_counter_ns()
            n = n_first = 1 if count is None else count_tokens(p, count, item)
            if keep is not None:
                keep(item)
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as e:
                    item = await agen.athrow(e)
                else:
                    item = await asend(sent)
                last = perf_counter_ns()
                if count is None:
                    n += 1
                else:
                    n += count_tokens(p, count, item)
                if keep is not None:
                    keep(item)
        except StopAsyncIteration:
            end_stream(p, t0, first, last, n, n_first, n_in, OK, None, args, kwargs, kept)
            return
        except GeneratorExit:
            try:
                await agen.aclose()
            except BaseException as e:
                end_stream(p, t0, first, last, n, n_first, n_in, ERROR, e, args, kwargs, kept)
                raise
            end_stream(p, t0, first, last, n, n_first, n_in, CANCELLED, None, args, kwargs, kept)
            raise
        except asyncio.CancelledError:  # the serving task was cancelled (client went away)
            end_stream(p, t0, first, last, n, n_first, n_in, CANCELLED, None, args, kwargs, kept)
            raise
        except BaseException as e:
            end_stream(p, t0, first, last, n, n_first, n_in, ERROR, e, args, kwargs, kept)
            raise

    wrapper.__benchwatch_probe__ = p  # type: ignore[attr-defined]
    return wrapper
