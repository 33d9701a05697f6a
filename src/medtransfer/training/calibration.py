"""Temperature scaling (Guo et al., ICML 2017): one scalar ``T > 0`` divides the logits before the softmax (or the
sigmoid, for multi-label outputs). It is fitted on the validation split only, by minimising the negative
log-likelihood over ``log T`` (scipy's bounded scalar minimiser), and stored with the model (``model.json``:
``temperature``), so predictions, the run's ``test_predictions.csv`` and the exported graph all divide by it.
Dividing by one positive number keeps every image's ranking of classes, so accuracy is unchanged, and for binary or
multi-label outputs each class's AUC too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medtransfer.metrics import auc_score
from medtransfer.metrics.calibration import expected_calibration_error, reliability_bins

#: the range ``T`` is searched in
BOUNDS = (0.05, 20.0)


def scaled_probabilities(logits: np.ndarray, temperature: float, label_kind: str) -> np.ndarray:
    """softmax (or sigmoid, multi-label) of ``logits / temperature``, in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if label_kind == "multilabel":
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, temperature: float, label_kind: str) -> float:
    """Mean NLL of the targets under ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    targets = np.asarray(targets)
    if label_kind == "multilabel":
        y = targets.astype(np.float64)
        # log(1 + exp(-|z|)) + max(z, 0) - y z: the stable binary cross-entropy with logits
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    log_p = z - z.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(z)), targets.astype(np.int64)].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray, label_kind: str) -> float:
    """The temperature that minimises the NLL of ``targets`` (validation cases only) under ``logits / T``."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    if not len(logits):
        return 1.0
    res = minimize_scalar(lambda log_t: negative_log_likelihood(logits, targets, float(np.exp(log_t)), label_kind),
                          bounds=tuple(np.log(BOUNDS)), method="bounded", options={"xatol": 1e-5})
    t = float(np.exp(res.x))
    # never worse than no scaling on the data it was fitted on
    if negative_log_likelihood(logits, targets, t, label_kind) > negative_log_likelihood(logits, targets, 1.0, label_kind):
        return 1.0
    return t


@dataclass
class CalibrationCheck:
    """A calibration judged on held-out cases: the figures a run reports (``summary``, JSON-ready) and the
    reliability bins before and after (``curves``: ``[(label, ReliabilityBins), …]``)."""

    summary: dict
    curves: list = field(default_factory=list)


def temperature_check(logits: np.ndarray, targets: np.ndarray, temperature: float, label_kind: str) -> CalibrationCheck:
    """ECE (and reliability bins) of ``logits`` before and after dividing them by ``temperature``."""
    before = scaled_probabilities(logits, 1.0, label_kind)
    after = scaled_probabilities(logits, temperature, label_kind)
    return CalibrationCheck(
        summary={"ece_before": expected_calibration_error(before, targets, label_kind),
                 "ece_after": expected_calibration_error(after, targets, label_kind),
                 "nll_before": negative_log_likelihood(logits, targets, 1.0, label_kind),
                 "nll_after": negative_log_likelihood(logits, targets, temperature, label_kind),
                 "auc_before": auc_score(before, targets, label_kind),
                 "auc_after": auc_score(after, targets, label_kind)},
        curves=[("uncalibrated", reliability_bins(before, targets, label_kind)),
                (f"temperature {temperature:.2f}", reliability_bins(after, targets, label_kind))])
