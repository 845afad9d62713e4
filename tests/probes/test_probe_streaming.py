"""Probed generators: items, return values and exceptions pass through exactly; each stream is
recorded once with time to first token, time per output token, duration, outcome and tokens."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest

from probes import ConfigError, probe
from probes import metric_names as m
from probes.export import PrometheusEndpoint
from probes.genai import CANCELLED, ERROR, OK, GenAIShard
from probes.metrics import Producer
from probes.state import Registry


def _g(reg: Registry, model: str = "lm", version: str = "v1", op: str = "text_completion") -> GenAIShard:
    return reg.state(model, version).snapshot().totals.genai[op]


def _outcomes(g: GenAIShard) -> list[int]:
    return [sum(g.dur[i]) for i in (OK, ERROR, CANCELLED)]


def test_a_stream_records_ttft_tpot_duration_and_tokens() -> None:
    reg = Registry()

    @probe(model="lm", version="v1", registry=reg, input_tokens=lambda prompt: len(prompt.split()))
    def generate(prompt: str) -> Iterator[str]:
        time.sleep(0.05)  # prefill
        for tok in ("a", "b", "c", "d", "e"):
            time.sleep(0.01)
            yield tok
        return "stop"

    gen = generate("one two three")
    assert reg.state("lm", "v1").snapshot().totals.genai == {}  # nothing before the first next()
    items = []
    t0 = time.perf_counter_ns()
    try:
        while True:
            items.append(next(gen))
            if len(items) == 1:
                ttft = time.perf_counter_ns() - t0
    except StopIteration as stop:
        assert stop.value == "stop"  # the return value comes through
    total = time.perf_counter_ns() - t0
    assert items == ["a", "b", "c", "d", "e"]
    g = _g(reg)
    assert sum(g.ttft) == 1 and 0.06e9 <= g.ttft_sum <= ttft
    assert sum(g.tpot) == 1 and 0.01e9 <= g.tpot_sum <= (total - g.ttft_sum) / 4
    assert _outcomes(g) == [1, 0, 0] and g.dur_sum[OK] <= total
    assert (g.in_tokens, g.out_tokens) == (3, 5)
    # the classic inference series counts the stream as one ok call too
    assert sum(reg.state("lm", "v1").snapshot().totals.ok) == 1


def test_output_tokens_counts_tokens_per_item_and_tpot_divides_by_them() -> None:
    reg = Registry()

    @probe(model="lm", version="v1", registry=reg, output_tokens=len)
    def chunks() -> Iterator[list[int]]:
        yield [1, 2]
        time.sleep(0.02)
        yield [3, 4, 5, 6]

    assert list(chunks()) == [[1, 2], [3, 4, 5, 6]]
    g = _g(reg)
    assert g.out_tokens == 6
    # 20 ms between the first and the last item, over the 4 tokens after the first item
    assert 0.02e9 / 4 <= g.tpot_sum < 0.02e9 / 2


def test_an_exception_mid_stream_is_the_same_object_and_counts_as_error() -> None:
    reg = Registry()
    boom = ValueError("model crashed")

    @probe(model="lm", version="v1", registry=reg)
    def generate() -> Iterator[int]:
        yield 1
        yield 2
        raise boom

    got = []
    with pytest.raises(ValueError) as info:
        for x in generate():
            got.append(x)
    assert info.value is boom and got == [1, 2]
    g = _g(reg)
    assert _outcomes(g) == [0, 1, 0] and g.out_tokens == 2 and sum(g.tpot) == 1
    t = reg.state("lm", "v1").snapshot().totals
    assert sum(t.err) == 1 and t.errors == {"ValueError": 1}


def test_an_early_close_is_cancelled_not_an_error_and_closes_the_generator() -> None:
    reg = Registry()
    closed = []

    @probe(model="lm", version="v1", registry=reg)
    def generate() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    for x in generate():
        if x == 3:
            break  # the consumer drops it: close() when it is collected
    gen = generate()
    next(gen)
    gen.close()
    assert closed == [True, True]
    g = _g(reg)
    assert _outcomes(g) == [0, 0, 2] and g.out_tokens == 5
    t = reg.state("lm", "v1").snapshot().totals
    assert sum(t.err) == 0 and t.in_flight == 0


def test_send_and_throw_reach_the_generator_as_with_yield_from() -> None:
    reg = Registry()

    @probe(model="lm", version="v1", registry=reg)
    def echo() -> Iterator[str]:
        got = "start"
        while True:
            try:
                got = yield got
            except KeyError:
                got = "recovered"

    gen = echo()
    assert next(gen) == "start"
    assert gen.send("x") == "x"
    assert gen.throw(KeyError("k")) == "recovered"
    with pytest.raises(TypeError):
        gen.throw(TypeError("not handled"))
    g = _g(reg)
    assert _outcomes(g) == [0, 1, 0] and g.out_tokens == 3


def test_an_empty_stream_has_a_duration_but_no_ttft() -> None:
    reg = Registry()

    @probe(model="lm", version="v1", registry=reg)
    def nothing() -> Iterator[int]:
        return
        yield

    assert list(nothing()) == []
    g = _g(reg)
    assert sum(g.ttft) == 0 and sum(g.tpot) == 0 and _outcomes(g) == [1, 0, 0] and g.out_tokens == 0


def test_failing_token_callables_are_faults_never_raised() -> None:
    reg = Registry()

    def bad(*_: object) -> int:
        raise RuntimeError("cannot count")

    @probe(model="lm", version="v1", registry=reg, output_tokens=bad, input_tokens=bad)
    def generate() -> Iterator[int]:
        yield from range(4)

    assert list(generate()) == [0, 1, 2, 3]
    assert reg.faults.counts()["tokens"] == 5  # input once, output per item
    g = _g(reg)
    assert g.out_tokens == 4 and g.in_tokens == 0  # an uncountable item is still one token


def test_bad_token_arguments_fail_at_decoration() -> None:
    with pytest.raises(ConfigError, match="output_tokens"):
        probe(model="lm", version="v1", output_tokens=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="input_tokens"):
        probe(model="lm", version="v1", input_tokens="len")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="operation"):
        probe(model="lm", version="v1", operation="")


def test_async_generators_stream_close_and_cancel() -> None:
    reg = Registry()
    closed: list[bool] = []

    @probe(model="lm", version="v1", registry=reg, operation="chat", input_tokens=lambda n: n)
    async def generate(n: int) -> AsyncIterator[int]:
        try:
            await asyncio.sleep(0.02)
            for i in range(n):
                await asyncio.sleep(0.005)
                yield i
        finally:
            closed.append(True)

    async def main() -> None:
        assert [x async for x in generate(4)] == [0, 1, 2, 3]
        agen = generate(10)
        assert await agen.__anext__() == 0
        await agen.aclose()  # client disconnect: the generator is closed, not failed

        async def consume() -> None:
            async for _ in generate(1000):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    g = _g(reg, op="chat")
    assert _outcomes(g) == [1, 0, 2] and closed == [True, True, True]
    assert sum(g.ttft) == 3 and g.ttft_sum >= 3 * 0.02e9
    assert g.in_tokens == 1014 and g.out_tokens >= 4 + 1 + 1


def test_async_exception_passes_through() -> None:
    reg = Registry()
    boom = RuntimeError("oom")

    @probe(model="lm", version="v1", registry=reg)
    async def generate() -> AsyncIterator[int]:
        yield 1
        raise boom

    async def main() -> None:
        got = []
        with pytest.raises(RuntimeError) as info:
            async for x in generate():
                got.append(x)
        assert info.value is boom and got == [1]

    asyncio.run(main())
    assert _outcomes(_g(reg)) == [0, 1, 0]


def test_prometheus_names_and_labels_from_the_real_exporter() -> None:
    """The OTel names become the documented Prometheus names and labels (real exporter)."""
    from opentelemetry.sdk.metrics import MeterProvider

    reg = Registry()

    @probe(model="lm", version="v1", registry=reg, input_tokens=lambda: 7)
    def generate() -> Iterator[int]:
        yield from range(3)

    assert list(generate()) == [0, 1, 2]
    with PrometheusEndpoint("127.0.0.1", 0, producer=Producer(reg)) as ep:
        provider = MeterProvider(metric_readers=[ep.reader])
        provider.get_meter("t").create_observable_gauge("t.up", callbacks=[lambda _: []])
        provider.get_meter("t").create_counter("t.calls").add(1)
        with urllib.request.urlopen(ep.url, timeout=10) as r:  # noqa: S310 (loopback)
            text = r.read().decode()
        provider.shutdown()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, s.labels.get("outcome", ""), s.labels.get(m.GENAI_TOKEN_TYPE, "")): s
               for f in text_string_to_metric_families(text) for s in f.samples}
    want = {"model": "lm", "model_version": "v1", "gen_ai_request_model": "lm",
            "gen_ai_operation_name": "text_completion"}
    for key, value in (((f"{m.GENAI_TTFT}_count", "", ""), 1), ((f"{m.GENAI_TPOT}_count", "", ""), 1),
                       ((m.GENAI_REQUESTS, "ok", ""), 1), ((m.GENAI_TOKENS, "", "input"), 7),
                       ((m.GENAI_TOKENS, "", "output"), 3)):
        assert key in samples, (key, sorted(samples)[:40])
        assert samples[key].value == value and want.items() <= samples[key].labels.items(), samples[key]


class _Kept:
    """A sink that keeps what the real SampleQueue hands it."""

    def __init__(self) -> None:
        self.samples: list[object] = []

    def send(self, samples: list[object]) -> None:
        self.samples.extend(samples)

    def close(self) -> None:
        pass


def test_sampled_streams_carry_output_tokens_and_what_outputs_reads() -> None:
    """Only finished (ok) streams are sampled: a cut-short one would bias output lengths."""
    from probes.sampling import SampleQueue

    reg = Registry()
    sink = _Kept()
    queue = SampleQueue(sink, reg.faults)
    reg.sample_queue, reg.sample_rate = queue, 1.0
    try:
        @probe(model="lm", version="v1", registry=reg, inputs=lambda n: {"prompt_chars": float(n)},
               outputs=lambda items: {"stop_reason": "length" if len(items) == 4 else "stop",
                                      "last": float(items[-1])})
        def generate(n: int) -> Iterator[int]:
            yield from range(n)
            if n == 2:
                raise ValueError("no")

        assert list(generate(4)) == [0, 1, 2, 3]
        assert list(generate(3)) == [0, 1, 2]
        with pytest.raises(ValueError):
            list(generate(2))
        gen = generate(5)
        next(gen)
        gen.close()
        queue.flush()
    finally:
        reg.sample_rate, reg.sample_queue = 0.0, None
        queue.close()
    got = sorted((s.outputs["output_tokens"], s.outputs["stop_reason"], s.outputs["last"],  # type: ignore[attr-defined]
                  dict(s.inputs)) for s in sink.samples)  # type: ignore[attr-defined]
    assert got == [(3.0, "stop", 2.0, {"prompt_chars": 3.0}), (4.0, "length", 3.0, {"prompt_chars": 4.0})]
