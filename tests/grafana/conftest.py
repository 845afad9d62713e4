"""Fixtures: the real stack (tests/support/grafana_stack.py, one per test module) and the Grafana fake."""

from tests.support.grafana_fake import fake_grafana  # noqa: F401 (fixture)
from tests.support.grafana_stack import stack  # noqa: F401 (fixture)
