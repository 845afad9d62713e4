"""Built-in benchmark suites (data files: NAME.json + NAME.npz)."""
