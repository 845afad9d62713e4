"""benchwatch probes: measure every inference in the serving process."""
