"""Sinks for sampled summaries: the `Sink` protocol and `from_url` to pick a transport.

The transports live in their own modules and are imported only when asked for, so a serving
process without `requests`/`kafka-python` can still use the probe:
`http(s)://host:port[/path]` -> `probes.sinks.http.HttpSink`,
`kafka://host:port/topic` -> `probes.sinks.kafka.KafkaSink`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, cast

from probes.errors import ConfigError, require
from probes.samples import Sample, Sink

__all__ = ["Sample", "Sink", "from_url"]


_SCHEMES = {
    "http": ("probes.sinks.http", "HttpSink"),
    "https": ("probes.sinks.http", "HttpSink"),
    "kafka": ("probes.sinks.kafka", "KafkaSink"),
}


def from_url(url: str, **options: Any) -> Sink:
    """Build the sink a URL names; `options` go to the sink's constructor. A URL that cannot
    work raises `probes.ConfigError`, a transport without its extra `probes.MissingExtraError`."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("sink URL is empty: use http://host:port or kafka://host:port/topic")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unknown sink URL scheme {scheme or '(none)'!r} in {url!r}: "
            "use http(s)://host:port for the collector or kafka://host:port/topic"
        )
    module_name, class_name = _SCHEMES[scheme]
    module = require(module_name, "kafka" if scheme == "kafka" else "all", f"the {scheme} sink")
    cls = getattr(module, class_name)
    return cast(Sink, cls(url, **options))
