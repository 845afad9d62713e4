"""SciPy's `special` and `stats`, or a `MissingExtraError` naming the `drift` extra.

The drift statistics import SciPy from here, so `import drift` without it fails with a message
that says what to install instead of a bare `No module named 'scipy'`."""

from probes.errors import require

special = require("scipy.special", "drift", "benchwatch's drift statistics")
stats = require("scipy.stats", "drift", "benchwatch's drift statistics")
