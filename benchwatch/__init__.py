"""benchwatch application layer: the CLI, the demo, benchmarks and canary replays.

The libraries are the top-level packages `probes`, `collector` and `drift`; this package wires them.
"""

from probes._version import __version__

__all__ = ["__version__"]
