"""Shared fixtures: real Prometheus and Alertmanager on loopback, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchwatch import services


@pytest.fixture
def prometheus() -> Iterator[Callable[..., services.Prometheus]]:
    """Factory: `prometheus({"job": ["127.0.0.1:PORT"]}, rule_files=[...], alertmanager=url)`."""
    started: list[services.ManagedProcess] = []

    def start(*args: Any, **kwargs: Any) -> services.Prometheus:
        p = services.start_prometheus(*args, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def alertmanager() -> Iterator[Callable[..., services.Alertmanager]]:
    """Factory: `alertmanager(config_dict_or_path)`."""
    started: list[services.ManagedProcess] = []

    def start(*args: Any, **kwargs: Any) -> services.Alertmanager:
        a = services.start_alertmanager(*args, **kwargs)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()
