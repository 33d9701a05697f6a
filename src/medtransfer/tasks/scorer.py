"""A task's scorer: its loss, its predictions from the network's outputs, its :class:`Metric` with the per-case
columns the study stores to recompute it, its test metrics, and the calibration of its predictions, if any."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from medtransfer.metrics.bootstrap import percentile_interval, resample_cases
from medtransfer.tasks.metric import Metric

#: bootstrap resamples of the default test metric
N_RESAMPLES = 1000


class Scorer:
    """Subclass: set :attr:`metric`, implement :meth:`loss`, :meth:`predict` and :meth:`case_columns`."""

    #: the study metric
    metric: Metric

    def loss(self, outputs, targets) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, outputs) -> Any:
        """The network's outputs for a batch as the metrics read them (probabilities, a mask, boxes, …), on the CPU."""
        raise NotImplementedError

    def predict_at(self, outputs, sizes: Sequence[tuple[int, int]]) -> Any:
        """:meth:`predict` for images whose own sizes ``(h, w)`` are ``sizes`` (one per output), for the targets of
        :meth:`~medtransfer.tasks.targets.TargetCodec.own_size_targets`. By default the predictions at the input size."""
        return self.predict(outputs)

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        """What the study stores per test case to recompute :attr:`metric` on resampled cases: named columns, one
        entry per case (probabilities and targets, a per-case score, …)."""
        raise NotImplementedError

    def score(self, predictions, targets) -> float:
        """The metric on validation predictions: :attr:`metric`'s statistic on all the cases."""
        cases = self.case_columns(predictions, targets)
        n = len(next(iter(cases.values()))) if cases else 0
        return float(self.metric.statistic(cases, np.arange(n)[None])[0]) if n else float("nan")

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        """Test metrics with bootstrap intervals: ``{metric: {"value", "ci_low", "ci_high"}}``, the study metric
        among them. By default the study metric alone, over resampled cases."""
        cases = self.case_columns(predictions, targets)
        idx = resample_cases(len(next(iter(cases.values()))), N_RESAMPLES, seed)
        return {self.metric.name: percentile_interval(self.metric.statistic(cases, idx))}

    # -- calibration -----------------------------------------------------------------------------------------
    @property
    def calibrates(self) -> bool:
        """Whether the scorer fits a calibration of its predictions on the validation split (:meth:`calibrate`)."""
        return False

    def calibrate(self, outputs, targets) -> dict:
        """Fit the calibration on the validation split's network outputs (``Trainer.predict(..., raw=True)``) and
        keep it: :meth:`predict` applies it from then on and :meth:`fitted` gives it. Returns what a run reports
        of the fit (JSON-ready)."""
        return {}

    def calibration_check(self, outputs, targets):
        """The fitted calibration judged on the test split's network outputs: a
        :class:`~medtransfer.training.calibration.CalibrationCheck` (figures before and after), or ``None``."""
        return None

    def fitted(self) -> dict:
        """What was fitted (a temperature), for the task's spec."""
        return {}
