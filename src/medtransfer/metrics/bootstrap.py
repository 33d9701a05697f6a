"""The case bootstrap every interval in medtransfer uses: resample the test cases, score every resample at once,
and read the interval off the percentiles of the scores."""

from __future__ import annotations

import warnings

import numpy as np


def resample_cases(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples + 1) × n`` case indices drawn with replacement; row 0 is the cases as they are."""
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples + 1, n))
    idx[0] = np.arange(n)
    return idx


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high"}``: draw 0 is the point estimate, the interval is the percentile interval of
    the other draws (NaN draws, where a resample left the metric undefined, are left out)."""
    draws = np.asarray(draws, dtype=np.float64)
    point, rest = float(draws[0]), draws[1:]
    rest = rest[np.isfinite(rest)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(rest, [alpha, 1 - alpha]) if len(rest) else (np.nan, np.nan)
    return {"value": point, "ci_low": float(lo), "ci_high": float(hi)}


def nanmean(stacked: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where every value is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(stacked, dtype=np.float64), axis=axis)
