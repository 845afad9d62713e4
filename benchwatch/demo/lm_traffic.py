"""Demo traffic for the language model: the `text` suite's prompts posted to the streaming server
at a steady rate (Poisson arrivals), each stream read to its end, drifting at a known time.

Before `drift_at_s` the requests decode greedily (temperature 0), as the release benchmark did;
from then on the clients sample at temperature 1 (a client configuration change), which makes
the answers shorter, ended by a newline more often and less confident: the output-length,
stop-reason, confidence and entropy features the drift service watches.

    python -m benchwatch.demo.lm_traffic --url http://127.0.0.1:8000/generate --rate 40 \
        --drift-at 40 --duration 120 --status traffic.json

The status file is the digits traffic's (`benchwatch.demo.traffic`): the same generator, with
prompts as its requests.
"""

from __future__ import annotations

import json

import numpy as np

from benchwatch.demo.traffic import run_cli

MAX_TOKENS = 64
DRIFT_TEMPERATURE = 1.0


def requests() -> np.ndarray:
    """One request per prompt of the shipped `text` suite, greedy (an object array of dicts)."""
    from benchwatch.bench.text_suite import load_text_suite

    suite = load_text_suite("text")
    out = np.empty(len(suite), dtype=object)
    for i, p in enumerate(suite.prompts):
        out[i] = {"prompt": p, "max_tokens": suite.max_tokens, "temperature": 0.0, "seed": 0}
    return out


def drifted(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same prompts, sampled at temperature 1 with a fresh seed each."""
    out = np.empty(len(batch), dtype=object)
    for i, req in enumerate(batch):
        out[i] = {**req, "temperature": DRIFT_TEMPERATURE, "seed": int(rng.integers(0, 2**31))}
    return out


def body(batch: np.ndarray) -> bytes:
    return json.dumps(batch[0]).encode()


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, prog="python -m benchwatch.demo.lm_traffic",
                   description="post prompts to the streaming language-model "
                   "server at a steady rate, drifting at a known time",
                   url_help="the endpoint, http://HOST:PORT/generate",
                   default_path="/generate",
                   extra=lambda: {"body": body, "images": requests(), "drift": drifted})


if __name__ == "__main__":
    raise SystemExit(main())
