"""The one version of the benchwatch distribution.

setuptools reads it (pyproject `[tool.setuptools.dynamic]`), `benchwatch.__version__` and the
OTel instrumentation scopes import it, and tests/deploy/test_version.py checks that the image
tags in deploy/ match it. It lives in `probes` because every package may import `probes`.
"""

__version__ = "0.1.0"
