"""The one writer of a study's trials, in the study's own process: each finished trial's model is kept or dropped,
then the trial is recorded in the store (one transaction) and handed to the trackers."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from medtransfer.files import replace_folder
from medtransfer.study.executors import TrialReport
from medtransfer.study.folder import StudyFolder
from medtransfer.study.halving import PausedTrials
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import complete_trials
from medtransfer.study.tracked import StudyTracking
from medtransfer.study.trial_lines import failed_line
from medtransfer.study.trial_plan import Trial
from medtransfer.tasks import Metric


@dataclass
class TrialRecorder:
    """Records the trials of one study; ``checkpoints`` is its policy (``best``, ``all`` or ``none``), ``where``
    how the set-up section names where a trial ran, ``metric`` the task's."""

    store: StudyStore
    folder: StudyFolder
    checkpoints: str
    metric: Metric
    tracking: StudyTracking
    where: str
    log: object = print

    def accept(self, report: TrialReport) -> None:
        """Keep (or drop) a finished trial's model, then record the trial. A trial paused at a halving rung is only
        logged: its worker saved it."""
        trial = report.trial
        if report.record.get("status") == "paused":
            self.log(report.line)
            return
        if report.staged is not None:
            self._keep_model(trial, Path(report.staged), report.record["val_score"])
        self.store.record(strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed, **report.record)
        self._done(trial, report.line)

    def failed(self, trial: Trial, reason: str) -> None:
        """A trial that its executor gave up on (its worker died every time it ran it)."""
        self.store.record(strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed, status="failed",
                          error=reason, device=self.where)
        self._done(trial, failed_line(trial.label(), reason))

    def _done(self, trial: Trial, line: str) -> None:
        PausedTrials(self.folder).drop(trial.id)
        self.log(line)
        self.tracking.trial_done(trial.id)

    def _keep_model(self, trial: Trial, staged: Path, val_score: float) -> None:
        """``staged`` becomes ``models/<trial>`` (policy ``all``), or ``models/<strategy>`` when it is the strategy's
        best validation trial so far (policy ``best``); else it is dropped."""
        if self.checkpoints == "all":
            replace_folder(staged, self.folder.trial_model(trial.id))
            return
        previous = complete_trials(self.store.trials())
        previous = previous[previous.strategy == trial.strategy] if len(previous) else previous
        best_so_far = previous.val_score.max() if self.metric.higher_is_better else previous.val_score.min()
        if len(previous) and not self.metric.better(val_score, best_so_far):
            shutil.rmtree(staged, ignore_errors=True)
            return
        replace_folder(staged, self.folder.strategy_model(trial.strategy))
