"""`benchwatch demo`: the whole product end to end on embedded defaults.

Needs the `demo` extra. Its packages are checked here, before any part of the demo is imported,
so a missing one is the first thing the user reads (`MissingExtraError`), not a traceback."""

from probes.errors import require

DEMO_PACKAGES = ("onnxruntime", "scipy", "rich")  # model server, drift statistics, live view
for _module in DEMO_PACKAGES:
    require(_module, "demo", "benchwatch demo")

from benchwatch.demo.session import DemoConfig, DemoResult, run_demo  # noqa: E402

__all__ = ["DEMO_PACKAGES", "DemoConfig", "DemoResult", "run_demo"]
