"""What a study's report is built from, read once from the study folder: the store's trials, curves and per-case
records, the summary (statistics live in :mod:`medtransfer.study.summary`), the task and its report section."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.errors import DataError
from medtransfer.strategies import by_depth
from medtransfer.study.folder import MODEL_SPEC, StudyFolder
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import StudySummary, TrialRecords, study_task, summarize
from medtransfer.tasks import Metric, ReportSection, Task


@dataclass
class StudyFacts:
    """Everything the report shows."""

    folder: Path
    store: StudyStore
    config: dict
    environment: dict
    data: dict  # the dataset card written by the study; empty before the first trial ran
    records: TrialRecords
    curves: pd.DataFrame
    summary: StudySummary
    task: Task

    @classmethod
    def read(cls, folder: Path) -> StudyFacts:
        store = StudyStore(folder)
        if not store.exists():
            raise DataError(f"{folder}: no study here ({store.path.name} is missing); run 'medtransfer study' first")
        store.check()
        meta = store.meta()
        data = json.loads(meta["data"]) if meta.get("data") else {}
        task = study_task(store)
        return cls(folder, store, json.loads(meta["config"]), json.loads(meta.get("environment", "{}")), data,
                   TrialRecords(store, task), store.curves(), summarize(store, task), task)

    @cached_property
    def section(self) -> ReportSection:
        """What the task adds to the report."""
        return self.task.report

    @property
    def trials(self) -> pd.DataFrame:
        return self.records.trials

    @property
    def done(self) -> pd.DataFrame:
        return self.records.done

    @property
    def metric(self) -> Metric:
        return self.summary.metric

    @property
    def head(self) -> str:
        """What the new, always-trained part of the network is called: ``classifier``, ``decoder``, …"""
        return self.section.head

    @property
    def order(self) -> list[str]:
        """The strategies with results, shallow to deep."""
        return by_depth(self.summary.table.strategy.unique()) if len(self.summary.table) else []

    @property
    def fractions(self) -> list[float]:
        """The training fractions with results, largest first."""
        return sorted(self.summary.table.fraction.unique(), reverse=True) if len(self.summary.table) else []

    def cell(self, strategy: str, fraction: float) -> pd.Series | None:
        """The summary row of one strategy at one fraction."""
        t = self.summary.table
        rows = t[(t.strategy == strategy) & (t.fraction == fraction)]
        return None if rows.empty else rows.iloc[0]

    def best(self, fraction: float, *, pretrained_only: bool = False) -> str | None:
        """The strategy the study's recommendation rule picks on validation at ``fraction``."""
        return self.summary.pick(fraction, pretrained_only=pretrained_only)

    def best_fine_tuned(self, fraction: float) -> str | None:
        """The pre-trained strategy the recommendation rule picks at ``fraction``."""
        return self.best(fraction, pretrained_only=True)

    def pair(self) -> tuple[str | None, str | None]:
        """(the recommended strategy, what it is shown against): scratch, or the best fine-tuned when scratch won."""
        rec = self.summary.recommended
        if rec is None:
            return None, None
        if rec != "scratch":
            return rec, "scratch" if "scratch" in self.order else None
        return rec, self.best_fine_tuned(self.summary.recommended_fraction)

    def runs(self, strategy: str, fraction: float) -> dict[int, tuple[np.ndarray, dict]]:
        """seed → (test sample indices, per-case columns) of the finished trials of one cell."""
        return self.records.runs(strategy, fraction)

    @property
    def study_folder(self) -> StudyFolder:
        """Where the study keeps what it wrote."""
        return StudyFolder(self.folder)

    def saved_model(self, strategy: str) -> Path | None:
        """The saved model of ``strategy``: ``models/<strategy>/`` (best per strategy), else the folder of its best
        validation trial that was kept (every trial kept); None when the study kept none."""
        trials = self.done[self.done.strategy == strategy]
        best_first = trials.sort_values("val_score", ascending=not self.metric.higher_is_better)
        return self.study_folder.saved_model(strategy, list(best_first.id))

    def model_spec(self, strategy: str) -> dict | None:
        """The ``model.json`` of ``strategy``'s kept model, or ``None`` when the study kept none (or it is damaged)."""
        try:
            spec = json.loads((self.study_folder.strategy_model(strategy) / MODEL_SPEC).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return spec if isinstance(spec, dict) else None
