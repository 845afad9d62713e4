"""A probed, streaming HTTP server for the example language model (server-sent events).

    python -m benchwatch.example.lm_server --port 8000 --metrics-port 9464      # primary
    python -m benchwatch.example.lm_server --port 8001 --first-token-delay-ms 200 \
        --delay-fraction 0.05 --truncate-fraction 0.3                           # a worse canary

Endpoints: `POST /generate` `{"prompt": str, "max_tokens": 64, "temperature": 0.0, "seed": 0}` →
`text/event-stream` (chunked), one event per generated character
`data: {"token": "a", "confidence": 0.91, "entropy": 0.35}` and a last one
`data: {"done": true, "stop_reason": "stop"|"length", "output_tokens": n}`; an error after the
stream started is an event `{"error": ...}`. `GET /info` (model, version, task); `GET /healthz`.

The token stream is an async generator wrapped in `probes.probe` (time to first token, time per
output token, tokens, outcome; a client that disconnects mid-stream closes it: `cancelled`).
With a sink and a sample rate, each sampled stream becomes one `probes.Sample` with every output
feature of the generation (`benchwatch.bench.generative.FEATURES`: output tokens, stop reason,
mean per-token confidence and entropy), which the drift service compares with the baseline's.
The server sends it itself, after the last token, and keeps the probe's own sampling off: the
probe's sample of a stream holds `output_tokens` only, and the drift service refuses a sample
that lacks a feature of the baseline.

Connections, timeouts and TLS are the digits server's (`benchwatch.example.server`). The model
runs on the event loop, one step per token, so other connections are served between tokens.
Canary knobs (tests and demos): a delay before the first token and a delay per token (for a
seeded fraction of requests: a slower tail), and a seeded fraction of requests cut short (an
output-length shift).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from benchwatch.cli._server_options import add_server_options, server_options
from benchwatch.example import lm
from benchwatch.example.server import DEFAULT_OPTIONS, Payload, RequestError, ServerConfig, serve
from probes.errors import BenchwatchError, ConfigError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class LmKnobs:
    """What makes a canary worse (tests and demos)."""

    first_token_delay_ms: float = 0.0
    token_delay_ms: float = 0.0
    truncate_fraction: float = 0.0  # this fraction of requests stops after a quarter of max_tokens
    delay_fraction: float = 1.0  # the delays apply to this (seeded) fraction of requests


def _event(doc: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


class LmApp:
    """The language model behind the server: parses requests, streams tokens."""

    def __init__(self, cfg: ServerConfig, knobs: LmKnobs = LmKnobs(),
                 sample_rate: float = 0.0, files: lm.LmFiles | None = None) -> None:
        self.cfg, self.knobs, self.sample_rate = cfg, knobs, sample_rate
        self.files = files or lm.shipped_lm()
        self.name, self.version = self.files.name, cfg.version or self.files.version
        self.label = f"{self.name} {self.version}"
        self._step = lm.make_step(cfg.backend, self.files)
        self._rng = random.Random(cfg.seed)
        self._info = json.dumps({"model": self.name, "version": self.version,
                                 "task": "generation", "backend": cfg.backend,
                                 "max_tokens_limit": lm.MAX_TOKENS_LIMIT}).encode()
        self.tokens = self._probe(self._tokens)

    def _probe(self, fn: Any) -> Any:
        try:
            from probes import probe

            return probe(model=self.name, version=self.version,
                         input_tokens=lambda prompt, *a, **k: len(prompt))(fn)
        except Exception:  # noqa: BLE001 - an older probes: serve unprobed, said once
            log.warning("probes.probe cannot wrap a generator here: serving without a probe")
            return fn

    async def _tokens(self, prompt: str, max_tokens: int, temperature: float, seed: int,
                      out: list[lm.Token], slow: bool) -> AsyncIterator[lm.Token]:
        """The probed stream: one item per generated character."""
        k = self.knobs
        if slow and k.first_token_delay_ms:
            await asyncio.sleep(k.first_token_delay_ms / 1000)
        gen: Iterator[lm.Token] = lm.generate(self._step, self.files.vocab, prompt, max_tokens,
                                              temperature, seed)
        for i, tok in enumerate(gen):
            if i and slow and k.token_delay_ms:
                await asyncio.sleep(k.token_delay_ms / 1000)
            out.append(tok)
            yield tok

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, Payload, float]:
        """(status, body or event stream, 0); never raises."""
        try:
            if path == "/generate":
                if method != "POST":
                    return 405, b'{"error":"use POST /generate"}', 0.0
                return 200, self._stream(*self._request(body)), 0.0
            if path == "/info":
                return 200, self._info, 0.0
            if path == "/healthz":
                return 200, b'{"status":"ok"}', 0.0
            return 404, b'{"error":"unknown path; use POST /generate, GET /info"}', 0.0
        except RequestError as e:
            return e.status, json.dumps({"error": str(e)}).encode(), 0.0
        except Exception as e:  # noqa: BLE001 - a bad request must not kill the server
            log.exception("error serving %s %s", method, path)
            return 500, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode(), 0.0

    def _request(self, body: bytes) -> tuple[str, int, float, int, bool]:
        if len(body) > MAX_BODY:
            raise RequestError(413, f"body of {len(body)} bytes > {MAX_BODY}: shorten the prompt")
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise RequestError(400, f'body is not JSON ({e}); send {{"prompt": "..."}}') from e
        if not isinstance(doc, dict):
            raise RequestError(400, 'send {"prompt": "...", "max_tokens": 64}')
        prompt, max_tokens = doc.get("prompt"), doc.get("max_tokens", 64)
        temperature, seed = doc.get("temperature", 0.0), doc.get("seed", 0)
        try:
            lm.check_request(prompt, max_tokens, temperature)
        except ConfigError as e:
            raise RequestError(400, str(e)) from e
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise RequestError(400, f'"seed" must be an integer >= 0, got {seed!r}')
        k = self.knobs
        if k.truncate_fraction and self._rng.random() < k.truncate_fraction:
            max_tokens = max(1, max_tokens // 4)
        slow = k.delay_fraction >= 1 or self._rng.random() < k.delay_fraction
        return str(prompt), max_tokens, float(temperature), seed, slow

    async def _stream(self, prompt: str, max_tokens: int, temperature: float,
                      seed: int, slow: bool) -> AsyncIterator[bytes]:
        toks: list[lm.Token] = []
        try:
            async for tok in self.tokens(prompt, max_tokens, temperature, seed, toks, slow):
                yield _event({"token": tok.text, "confidence": round(tok.confidence, 6),
                              "entropy": round(tok.entropy, 6)})
        except Exception as e:  # noqa: BLE001 - the probe counted it; the client is told
            log.exception("generation failed")
            yield _event({"error": f"{type(e).__name__}: {e}"})
            return
        g = lm.summarize(toks, prompt, max_tokens)
        self._sample(g)
        yield _event({"done": True, "stop_reason": g.stop_reason,
                      "output_tokens": g.output_tokens})

    def _sample(self, g: lm.Generation) -> None:
        """A sampled stream's output features to the drift sink."""
        try:
            from probes import Sample, current

            rt = current()
            queue = rt.queue if rt is not None else None
            rate = self.sample_rate
            if queue is None or not rate or self._rng.random() >= rate:
                return
            from benchwatch.bench.generative import generation_features

            queue.offer([Sample.new(self.name, self.version, generation_features(g))])
        except Exception:  # noqa: BLE001 - sampling never reaches the client
            log.debug("sampling a generation failed", exc_info=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchwatch.example.lm_server",
                                description="serve the example language model, streaming tokens")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="a retrained model: the directory with charlm.onnx + charlm.json "
                        "(python -m benchwatch.example.lm_train --out DIR; default: the shipped one)")
    p.add_argument("--version", default=None, help="model_version label (default: model hash)")
    p.add_argument("--first-token-delay-ms", type=float, default=0.0)
    p.add_argument("--token-delay-ms", type=float, default=0.0)
    p.add_argument("--delay-fraction", type=float, default=1.0,
                   help="the two delays apply to this fraction of requests (default all)")
    p.add_argument("--truncate-fraction", type=float, default=0.0,
                   help="this fraction of requests stops after a quarter of max_tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics-port", type=int, default=0,
                   help="expose probe metrics for Prometheus on this port (0 = none)")
    p.add_argument("--sink", default=None, help="send sampled generation summaries here "
                   "(the drift service's or collector's http://HOST:PORT, or kafka://...)")
    p.add_argument("--sample-rate", type=float, default=0.0)
    p.add_argument("--log-level", default="INFO")
    add_server_options(p, max_connections=DEFAULT_OPTIONS.max_connections)
    a = p.parse_args(argv)
    for name in ("truncate_fraction", "delay_fraction", "sample_rate"):
        if not 0 <= getattr(a, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if not (0 <= a.first_token_delay_ms <= 60_000 and 0 <= a.token_delay_ms <= 60_000):
        p.error("--first-token-delay-ms and --token-delay-ms must be between 0 and 60000")
    try:
        options = server_options(a)
        files = lm.read_lm(a.model) if a.model else None
    except BenchwatchError as e:
        p.error(str(e))
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the probes get the sink but no sample rate: this server samples whole generations itself
    cfg = ServerConfig(a.host, a.port, a.backend, a.version, seed=a.seed,
                       metrics_port=a.metrics_port, sink=a.sink, sample_rate=0.0,
                       options=options)
    knobs = LmKnobs(a.first_token_delay_ms, a.token_delay_ms, a.truncate_fraction,
                    a.delay_fraction)
    asyncio.run(serve(cfg, ready=lambda port: print(
        f"listening on {options.scheme}://{cfg.host}:{port}", flush=True),
        make_app=lambda c: LmApp(c, knobs, a.sample_rate, files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
