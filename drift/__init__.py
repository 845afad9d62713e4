"""benchwatch drift: compare live distributions with benchmark baselines."""
