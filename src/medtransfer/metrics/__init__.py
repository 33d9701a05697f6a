"""Metrics, each with a bootstrap confidence interval."""

from medtransfer.metrics.classification import (
    METRICS,
    auc_score,
    bootstrap_metrics,
    classification_metrics,
)

__all__ = ["METRICS", "auc_score", "bootstrap_metrics", "classification_metrics"]
