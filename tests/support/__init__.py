"""Helpers shared by more than one test module (import as `tests.support.<module>`).

Single-use helpers stay next to their test; Prometheus text is read with `benchwatch.promtext`.
"""
