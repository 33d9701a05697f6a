"""A metric on many bootstrap resamples at once, and paired comparisons of two models on the same test cases.

Used by study summaries: the mean metric over seeds with a case-bootstrap interval, and the paired difference between
two strategies (the same resampled cases scored by both), with its interval and a two-sided bootstrap p-value. The
metric is AUC for classification (from stored probabilities) and the mean per-image Dice for segmentation (from
stored per-image scores): see :func:`resampled_metric`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata


def batched_binary_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (``R×N``) against the 0/1 rows of ``positive``; NaN where one class only."""
    ranks = rankdata(scores, axis=1)  # average ranks: ties count one half
    n_pos = positive.sum(1)
    n_neg = positive.shape[1] - n_pos
    u = (ranks * positive).sum(1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def batched_auc(probs: np.ndarray, targets: np.ndarray, label_kind: str, resamples: np.ndarray) -> np.ndarray:
    """AUC (as :func:`medtransfer.metrics.auc_score` defines it) on each resample of cases (``R×N`` indices)."""
    if label_kind == "binary":
        return batched_binary_auc(probs[resamples, 1], targets[resamples] == 1)
    columns = range(probs.shape[1])
    if label_kind == "multiclass":
        per = [batched_binary_auc(probs[resamples, c], targets[resamples] == c) for c in columns]
    else:
        per = [batched_binary_auc(probs[resamples, j], targets[resamples, j] == 1) for j in columns]
    return _nanmean(np.stack(per))


def _nanmean(stacked: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (a resample where the AUC is undefined); NaN where all are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


def resample_cases(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples × n`` case indices drawn with replacement; row 0 is the original order."""
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples + 1, n))
    idx[0] = np.arange(n)
    return idx


#: ``metric(values, targets, resamples)`` -> one value per resample (``R×N`` case indices).
ResampledMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def resampled_metric(task: str = "classification", label_kind: str = "binary") -> ResampledMetric:
    """The study metric on resampled cases: AUC from ``N×C`` probabilities (classification), or the mean of
    ``N×1`` per-case scores (segmentation: each test image's Dice)."""
    if task == "segmentation":
        def mean_score(values: np.ndarray, targets: np.ndarray, resamples: np.ndarray) -> np.ndarray:
            return _nanmean(np.asarray(values, dtype=np.float64)[resamples, 0].T)

        return mean_score
    return lambda probs, targets, resamples: batched_auc(probs, targets, label_kind, resamples)


def _as_metric(metric: ResampledMetric | str) -> ResampledMetric:
    return resampled_metric("classification", metric) if isinstance(metric, str) else metric


def mean_interval(runs: list[tuple[np.ndarray, np.ndarray]], metric: ResampledMetric | str, *, n_resamples: int = 1000,
                  seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean metric over runs (seeds) scored on the same cases, with a case-bootstrap interval. ``metric``: a
    :func:`resampled_metric`, or a label kind for AUC."""
    metric = _as_metric(metric)
    n = len(runs[0][1])
    idx = resample_cases(n, n_resamples, seed)
    means = _nanmean(np.stack([metric(p, t, idx) for p, t in runs]))
    return _interval(means, level)


def paired_difference(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]],
                      metric: ResampledMetric | str, *, n_resamples: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict[str, float]:
    """Mean metric of runs ``a`` minus that of runs ``b``, on the same resampled cases: value, interval, p-value."""
    metric = _as_metric(metric)
    n = len(a[0][1])
    idx = resample_cases(n, n_resamples, seed)
    mean_a = _nanmean(np.stack([metric(p, t, idx) for p, t in a]))
    mean_b = _nanmean(np.stack([metric(p, t, idx) for p, t in b]))
    out = _interval(mean_a - mean_b, level)
    draws = (mean_a - mean_b)[1:]
    draws = draws[np.isfinite(draws)]
    out["p_value"] = float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean()))) if len(draws) else float("nan")
    out["significant"] = bool(out["ci_low"] > 0 or out["ci_high"] < 0)
    return out


def _interval(draws: np.ndarray, level: float) -> dict[str, float]:
    point, rest = float(draws[0]), draws[1:]
    rest = rest[np.isfinite(rest)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(rest, [alpha, 1 - alpha]) if len(rest) else (np.nan, np.nan)
    return {"value": point, "ci_low": float(lo), "ci_high": float(hi)}
