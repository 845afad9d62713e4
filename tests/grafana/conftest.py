"""Fixtures: the real stack (grafana_stack.py, one per test module) and the Grafana fake."""

from grafana_fake import fake_grafana  # noqa: F401 (fixture)
from grafana_stack import stack  # noqa: F401 (fixture)
