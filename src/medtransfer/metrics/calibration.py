"""How well predicted probabilities match observed frequencies: the expected calibration error and its bins.

The ECE follows Guo et al. (ICML 2017): the cases are binned by the confidence of their predicted class (equal-width
bins on [0, 1]); the ECE is the case-weighted mean of ``|accuracy − mean confidence|`` over the bins. For multi-label
outputs each label is a binary problem (probability of the label vs. its presence) and the ECE is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: equal-width confidence bins, as in Guo et al.
BINS = 15


@dataclass(frozen=True)
class ReliabilityBins:
    """Per confidence bin: the number of cases, their mean confidence and the share predicted correctly."""

    edges: np.ndarray  # BINS + 1 edges on [0, 1]
    counts: np.ndarray
    confidence: np.ndarray  # NaN in empty bins
    accuracy: np.ndarray  # NaN in empty bins

    @property
    def ece(self) -> float:
        n = self.counts.sum()
        if not n:
            return float("nan")
        gap = np.abs(np.nan_to_num(self.accuracy) - np.nan_to_num(self.confidence))
        return float((self.counts * gap).sum() / n)


def _bins(confidence: np.ndarray, correct: np.ndarray, bins: int) -> ReliabilityBins:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=bins) / counts
        acc = np.bincount(which, weights=correct.astype(np.float64), minlength=bins) / counts
    return ReliabilityBins(edges, counts, conf, acc)


def reliability_bins(probs: np.ndarray, targets: np.ndarray, label_kind: str, bins: int = BINS) -> ReliabilityBins:
    """The reliability bins of ``probs`` (N×C) against ``targets`` (class indices, or N×C 0/1 for multi-label)."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if label_kind == "multilabel":
        return _bins(probs.ravel(), targets.astype(bool).ravel(), bins)
    return _bins(probs.max(1), probs.argmax(1) == targets, bins)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, label_kind: str, bins: int = BINS) -> float:
    """The ECE (0 = perfectly calibrated); multi-label: the mean of the per-label ECEs."""
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    if label_kind == "multilabel":
        return float(np.mean([reliability_bins(probs[:, [j]], targets[:, [j]], label_kind, bins).ece
                              for j in range(probs.shape[1])]))
    return reliability_bins(probs, targets, label_kind, bins).ece
