"""Sampled summaries for `ProbeMiddleware`: a request's JSON body and its JSON response become
drift samples, one per row of a batch.

`ProbeMiddleware(app, routes=..., inputs=f, outputs=g)`: for a sampled request (the probe's
`sample_rate`; nothing is read or copied for the others) the middleware keeps the request body
as the app reads it and the response body as the app sends it (each up to `MAX_BODY` bytes),
and once the response has been sent calls `f(request_json)` and `g(response_json)`. Each
returns one mapping `{name: value}` (a single-row request) or a list of them, one per row of a
batched request: row i's inputs go with row i's outputs into one `probes.Sample` (a different
number of input and output rows is a `sampling` fault, never a mislabelled sample). Errors in
`f`, `g` or the JSON are counted as probe faults (`inputs`, `sampling`); the response the
client gets is never touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from probes.decorator import Probe
from probes.errors import ConfigError
from probes.sampling import READY_ROWS, build_samples, input_rows

__all__ = ["MAX_BODY", "BodyTap", "RequestSampler"]

MAX_BODY = 1 << 20  # bytes of a request or response body kept for a sampled request
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Rows = Callable[[Any], Mapping[str, Any] | list[Mapping[str, Any]]]


class RequestSampler:
    """One per probed route: decides per request whether to sample it (`tap`)."""

    def __init__(self, probe: Probe, inputs: Rows | None, outputs: Rows | None) -> None:
        for what, f in (("inputs", inputs), ("outputs", outputs)):
            if f is not None and not callable(f):
                raise ConfigError(f"ProbeMiddleware {what}= must be a callable(json) -> "
                                  f"{{name: value}} or a list of them (one per row), got {f!r}")
        self.probe, self.inputs, self.outputs = probe, inputs, outputs

    def tap(self) -> BodyTap | None:
        """A tap for this request when it is sampled, else None (the common case: one read)."""
        reg = self.probe.registry
        rate = reg.sample_rate
        if not rate or reg.sample_queue is None or reg.rng.random() >= rate:
            return None
        return BodyTap(self)


class BodyTap:
    """The bodies of one sampled request, bounded; `finish` turns them into samples."""

    def __init__(self, sampler: RequestSampler) -> None:
        self.sampler = sampler
        self.request = bytearray()
        self.response = bytearray()
        self.too_large = False

    def receive(self, receive: Receive) -> Receive:
        async def tapped() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                self._keep(self.request, message.get("body") or b"")
            return message
        return tapped

    def sent(self, body: bytes) -> None:
        self._keep(self.response, body)

    def _keep(self, buf: bytearray, chunk: bytes) -> None:
        if len(buf) + len(chunk) > MAX_BODY:
            self.too_large = True
        elif chunk:
            buf += chunk

    def finish(self, latency_ns: int) -> None:
        """Build this request's samples and queue them; never raises."""
        s = self.sampler
        p = s.probe
        reg = p.registry
        where = f"{p.model}/{p.version}:"
        try:
            queue = reg.sample_queue
            if queue is None or self.too_large:
                return
            inp = None
            if s.inputs is not None:
                try:
                    inp = input_rows(s.inputs(json.loads(self.request)))
                except Exception as e:
                    reg.faults.record("inputs", e, where)
                    return
            if s.outputs is not None:
                got = input_rows(s.outputs(json.loads(self.response)))
                data = got if isinstance(got, list) else [got]
            else:
                data = [{} for _ in inp] if isinstance(inp, list) else [{}]
            entry = (len(data), 0, p.model, p.version, time.time(), latency_ns / 1e9, data,
                     READY_ROWS, inp)
            offer_snapshot = getattr(queue, "offer_snapshot", None)
            if offer_snapshot is not None:
                offer_snapshot(*entry)
            else:  # a queue that takes finished Samples only
                queue.offer(build_samples(entry))
        except Exception as e:
            reg.faults.record("sampling", e, where)
