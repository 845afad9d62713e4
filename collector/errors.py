"""The collector's configuration error (the error tree's root is `probes.errors`)."""

from __future__ import annotations

from probes.errors import ConfigError


class CollectorConfigError(ConfigError):
    """The collector, its window store or its server cannot work as configured; the message
    names the setting and what to change."""


__all__ = ["CollectorConfigError"]
