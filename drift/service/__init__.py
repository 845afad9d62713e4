"""The drift service: evaluates collector windows against baselines on an interval, exports
scores and verdicts as metrics, and receives Alertmanager webhooks and delayed labels."""

from drift.service.engine import DriftService, Evaluation, ServiceConfig

__all__ = ["DriftService", "Evaluation", "ServiceConfig"]
