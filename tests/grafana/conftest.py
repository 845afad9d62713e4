"""The package-scoped real stack (see grafana_stack.py) for the dashboard tests."""

from grafana_stack import stack  # noqa: F401 (fixture)
