"""`benchwatch demo`: the whole product end to end on embedded defaults."""

from benchwatch.demo.session import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
