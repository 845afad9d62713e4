"""benchwatch's one error tree. It lives in `probes`, which depends on nothing of ours, so every
package can subclass it.

Every error says what is wrong and what to do about it. The CLI maps the classes to one exit-code
table (see `benchwatch.cli.errors`): a `ConfigError` is bad input (exit 2), anything else that
stops a verb from running is exit 3.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class BenchwatchError(Exception):
    """Root of every error benchwatch raises on purpose."""


class ConfigError(BenchwatchError, ValueError):
    """Bad configuration or input: the message names the setting and what to change."""


class MissingExtraError(BenchwatchError, ImportError):
    """An optional part was used without its extra installed."""

    def __init__(self, what: str, extra: str, missing: str) -> None:
        self.what, self.extra, self.missing = what, extra, missing
        super().__init__(f"{what} needs the Python package {missing!r}, which is not installed: "
                         f"pip install 'benchwatch[{extra}]'")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = (e.name or module).split(".")[0]
        raise MissingExtraError(what, extra, missing) from e


__all__ = ["BenchwatchError", "ConfigError", "MissingExtraError", "require"]
