"""The application's configuration error (the error tree's root is `probes.errors`).

`UsageError` is bad input to a command: an option value, a suite, a model file or another file
the command was pointed at. The CLI exits 2 on it (see `benchwatch.cli.errors`). Errors that stop
a command from running although its input is fine derive from `BenchwatchError` directly, e.g.
`benchwatch.services.ServiceError` or `benchwatch.bench.backends.BackendError`.
"""

from __future__ import annotations

from probes.errors import ConfigError


class UsageError(ConfigError):
    """An option, or a file the command was given, cannot work; the message says what to pass."""


__all__ = ["UsageError"]
