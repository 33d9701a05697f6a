"""Metrics, each with a bootstrap confidence interval."""

from medtransfer.metrics.labels import (
    METRICS,
    auc_score,
    bootstrap_metrics,
    label_metrics,
)

__all__ = ["METRICS", "auc_score", "bootstrap_metrics", "label_metrics"]
