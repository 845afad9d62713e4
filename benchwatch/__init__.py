"""benchwatch application layer: the CLI, the demo, benchmarks and canary replays.

The libraries are the top-level packages `probes`, `collector` and `drift`; this package wires them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("benchwatch")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
