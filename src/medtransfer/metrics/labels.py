"""Metrics of predicted labels (AUC, accuracy, sensitivity, specificity) with 95 % bootstrap confidence intervals.

AUC is binary ROC AUC, macro one-vs-rest for multi-class and macro over labels for multi-label. Accuracy, balanced
accuracy, sensitivity and specificity use the arg-max class (0.5 per label for multi-label); for binary data the
positive class is class 1. Sensitivity and specificity are macro averages over classes (labels) otherwise.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

from medtransfer.metrics.bootstrap import nanmean, percentile_interval, resample_cases
from medtransfer.metrics.paired import batched_auc

METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity")


def _binary_rates(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return float(sens), float(spec)


def auc_score(probs: np.ndarray, targets: np.ndarray, label_kind: str) -> float:
    """AUC for ``probs`` (``N×C``) against ``targets``; NaN when undefined (one class only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if label_kind == "binary":
                return float(roc_auc_score(targets, probs[:, 1]))
            if label_kind == "multiclass":  # macro one-vs-rest over the classes present
                present = np.unique(targets)
                if len(present) < 2:
                    return float("nan")
                return float(np.mean([roc_auc_score(targets == c, probs[:, c]) for c in present]))
            keep = [j for j in range(targets.shape[1]) if 0 < targets[:, j].sum() < len(targets)]
            if not keep:
                return float("nan")
            return float(np.mean([roc_auc_score(targets[:, j], probs[:, j]) for j in keep]))
        except ValueError:
            return float("nan")


def label_metrics(probs: np.ndarray, targets: np.ndarray, label_kind: str) -> dict[str, float]:
    """Point estimates of :data:`METRICS`."""
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    out = {"auc": auc_score(probs, targets, label_kind)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if label_kind == "multilabel":
            pred = (probs >= 0.5).astype(int)
            rates = [_binary_rates(targets[:, j], pred[:, j]) for j in range(targets.shape[1])]
            out["accuracy"] = float((pred == targets).mean())
            out["sensitivity"] = float(np.nanmean([r[0] for r in rates]))
            out["specificity"] = float(np.nanmean([r[1] for r in rates]))
            out["balanced_accuracy"] = (out["sensitivity"] + out["specificity"]) / 2
            return out
        pred = probs.argmax(1)
        out["accuracy"] = float((pred == targets).mean())
        out["balanced_accuracy"] = float(balanced_accuracy_score(targets, pred))
        if label_kind == "binary":
            out["sensitivity"], out["specificity"] = _binary_rates(targets, pred)
        else:
            rates = [_binary_rates(targets == c, pred == c) for c in range(probs.shape[1])]
            out["sensitivity"] = float(np.nanmean([r[0] for r in rates]))
            out["specificity"] = float(np.nanmean([r[1] for r in rates]))
    return out


def bootstrap_metrics(
    probs: np.ndarray, targets: np.ndarray, label_kind: str, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, dict[str, float]]:
    """``{metric: {"value", "ci_low", "ci_high"}}``: point estimate and percentile bootstrap interval over cases.

    All resamples are scored at once (vectorised); the definitions are those of :func:`label_metrics`.
    """
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    idx = resample_cases(len(targets), n_resamples, seed)  # row 0: the cases as they are
    draws = {"auc": batched_auc(probs, targets, label_kind, idx), **_batched_threshold_metrics(probs, targets, label_kind, idx)}
    return {k: percentile_interval(draws[k], level) for k in METRICS}


def _rate(hit: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Per resample: share of ``member`` cases that are ``hit`` (NaN where there are none)."""
    n = member.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (hit & member).sum(1) / np.maximum(n, 1), np.nan)


def _batched_threshold_metrics(probs, targets, label_kind, idx) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, sensitivity, specificity on each resample (rows of ``idx``)."""
    if label_kind == "multilabel":
        pred = probs >= 0.5
        t, p = targets[idx].astype(bool), pred[idx]  # R×N×L
        sens = nanmean(np.stack([_rate(p[..., j], t[..., j]) for j in range(t.shape[-1])]))
        spec = nanmean(np.stack([_rate(~p[..., j], ~t[..., j]) for j in range(t.shape[-1])]))
        return {"accuracy": (p == t).mean((1, 2)), "sensitivity": sens, "specificity": spec,
                "balanced_accuracy": (sens + spec) / 2}
    pred = probs.argmax(1)
    t, p = targets[idx], pred[idx]  # R×N
    recalls = np.stack([_rate(p == c, t == c) for c in range(probs.shape[1])])
    out = {"accuracy": (p == t).mean(1), "balanced_accuracy": nanmean(recalls)}
    if label_kind == "binary":
        out["sensitivity"], out["specificity"] = recalls[1], recalls[0]
    else:
        out["sensitivity"] = nanmean(recalls)
        out["specificity"] = nanmean(np.stack([_rate(p != c, t != c) for c in range(probs.shape[1])]))
    return out
