"""`HttpSink`: POST sample batches to the collector's `/v1/samples` (stdlib only).

Runs on the sample queue's drain thread, never on a request. Retries connection failures and
5xx answers a few times (the collector de-duplicates by `sample_id`, so a retry after a lost
answer never double counts); a 4xx answer is not retried and raises with the collector's error.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from probes.errors import BenchwatchError, ConfigError
from probes.samples import Sample

__all__ = ["HttpSink", "HttpSinkError"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/v1/samples"
TOKEN_ENV = "BENCHWATCH_TOKEN"


class HttpSinkError(BenchwatchError, RuntimeError):
    """The collector refused or could not be reached after retries."""


class HttpSink:
    """`HttpSink("http://127.0.0.1:9463", token=...)`; the path defaults to `/v1/samples`."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 5.0,
                 retries: int = 2, backoff_s: float = 0.2, max_batch: int = 500) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"HttpSink needs an http(s)://host:port URL, got {url!r}")
        path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_batch = max(1, max_batch)
        self.sent = 0
        self.last_report: dict[str, Any] | None = None
        self._closed = False

    def send(self, samples: Sequence[Sample]) -> None:
        if self._closed:
            raise HttpSinkError("HttpSink is closed")
        for start in range(0, len(samples), self.max_batch):
            chunk = samples[start:start + self.max_batch]
            body = json.dumps({"samples": [s.to_dict() for s in chunk]}).encode()
            self.last_report = self._post(body)
            self.sent += len(chunk)

    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * (2 ** (attempt - 1)))
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                    out = json.loads(resp.read() or b"{}")
                    return out if isinstance(out, dict) else {}
            except urllib.error.HTTPError as exc:
                detail = _error_text(exc)
                if exc.code < 500:
                    raise HttpSinkError(
                        f"collector at {self.url} refused the batch ({exc.code}): {detail}"
                    ) from exc
                last_error = f"{exc.code}: {detail}"
            except (OSError, ValueError) as exc:  # connection refused/reset, timeout, bad JSON
                last_error = f"{type(exc).__name__}: {exc}"
        raise HttpSinkError(
            f"collector at {self.url} unreachable after {self.retries + 1} tries ({last_error})")

    def close(self) -> None:
        self._closed = True


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return exc.reason if isinstance(exc.reason, str) else "no detail"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return "no detail"
