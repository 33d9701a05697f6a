"""A metric on many bootstrap resamples at once, and paired comparisons of two models on the same test cases.

Used by study summaries: the mean metric over seeds with a case-bootstrap interval, and the paired difference between
two strategies (the same resampled cases scored by both), with its interval and a two-sided bootstrap p-value. The
metric is the task's: a statistic that scores a run's stored per-case columns on every resample at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from medtransfer.metrics.bootstrap import nanmean, percentile_interval, resample_cases


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
    return nanmean(np.stack(per))


#: ``statistic(cases, resamples)``: a metric on each resample (``R×N`` case indices) from one run's stored per-case
#: columns (a task's :meth:`~medtransfer.tasks.Metric.statistic`).
Statistic = Callable[[dict, np.ndarray], np.ndarray]


def case_count(cases: dict) -> int:
    """The number of cases in one run's stored columns."""
    return len(next(iter(cases.values())))


def mean_interval(runs: list[dict], statistic: Statistic, *, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> dict[str, float]:
    """Mean metric over runs (seeds, each a dict of per-case columns) scored on the same cases, with a
    case-bootstrap interval."""
    idx = resample_cases(case_count(runs[0]), n_resamples, seed)
    return percentile_interval(nanmean(np.stack([statistic(r, idx) for r in runs])), level)


def paired_difference(a: list[dict], b: list[dict], statistic: Statistic, *, n_resamples: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict[str, float]:
    """Mean metric of runs ``a`` minus that of runs ``b``, on the same resampled cases: value, interval, p-value."""
    n = case_count(a[0])
    if case_count(b[0]) != n:
        raise ValueError(f"the runs were scored on {n} and {case_count(b[0])} test cases; compare runs on the same cases")
    idx = resample_cases(n, n_resamples, seed)
    mean_a = nanmean(np.stack([statistic(r, idx) for r in a]))
    mean_b = nanmean(np.stack([statistic(r, idx) for r in b]))
    out = percentile_interval(mean_a - mean_b, level)
    draws = (mean_a - mean_b)[1:]
    draws = draws[np.isfinite(draws)]
    out["p_value"] = float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean()))) if len(draws) else float("nan")
    out["significant"] = bool(out["ci_low"] > 0 or out["ci_high"] < 0)
    return out
