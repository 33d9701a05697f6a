"""A task's study metric: what early stopping, the recommendation, the summary and the report speak."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metric:
    """A task's study metric.

    ``statistic(cases, resamples)`` scores one run's stored per-case columns (:meth:`Scorer.case_columns`) on each
    row of ``resamples`` (``R×N`` case indices) at once; row 0 of ``resamples`` is the cases as they are.
    """

    name: str  # the column stem: "auc" gives test_auc, val_auc, …
    label: str  # as written: "AUC"
    statistic: Callable[[dict, np.ndarray], np.ndarray] = field(repr=False, compare=False)
    higher_is_better: bool = True
    scale: str = ""  # what its values mean, for the reader: "0.5 = chance, 1 = perfect"
    chance: float | None = None  # drawn as a dotted line where there is one
    unit_interval: bool = True  # values lie in [0, 1]
    others: tuple[str, ...] = ()  # the other test metrics the results table shows
    headings: dict[str, str] = field(default_factory=dict)  # how the other metrics are written, where not by name

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is: ``sign * difference > 0`` means the first was better."""
        return 1 if self.higher_is_better else -1

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
        return bool(np.isfinite(a) and (not np.isfinite(b) or self.sign * (a - b) > 0))

    def worst(self) -> float:
        return -np.inf if self.higher_is_better else np.inf

    def heading(self, name: str) -> str:
        return self.headings.get(name, name.replace("_", " ", 1))  # the rest of "ap50_<class>" is a class name
