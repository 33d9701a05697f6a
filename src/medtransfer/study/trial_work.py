"""One trial's work, wherever an executor runs it: train and test the trial, save its model for the study to keep or
drop, and hand back the record the study writes. Nothing here writes the store."""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass

from medtransfer.errors import MedTransferError
from medtransfer.files import StorageError
from medtransfer.plots import plot_reliability
from medtransfer.model.saved import save_model
from medtransfer.study.config import StudyConfig
from medtransfer.study.executors import TrialReport
from medtransfer.study.folder import StudyFolder
from medtransfer.study.halving import PausedTrials, RungMarker, promote
from medtransfer.study.store import StoreError
from medtransfer.engine import PreparedData, TrialImages, TrialOutcome, run_trial
from medtransfer.study.trial_lines import failed_line, finished_line, paused_line
from medtransfer.study.trial_plan import Trial


@dataclass
class TrialWork:
    """Everything a trial needs (the study's settings, its decoded images, the frozen-prefix cache) in one picklable
    object, and nothing of the store, which only the study's own process writes. Calling it trains and tests a
    trial, saves its model in the staging folder and returns a :class:`TrialReport`; a failed trial is reported, not
    raised."""

    config: StudyConfig
    device: str
    where: str  # how the set-up section names where it ran
    folder: StudyFolder
    prepared: PreparedData
    images: TrialImages
    cache: object = None
    halving_rate: int | None = None  # a successive-halving study: its trials pause at the rungs

    def __call__(self, trial: Trial, progress=None) -> TrialReport:
        started = time.perf_counter()
        saved = PausedTrials(self.folder).load(trial.id) if self.halving_rate else None
        before = saved["record"]["seconds"] if saved else 0.0  # the trial's time up to its pause
        try:
            outcome = run_trial(self.config.run_config(trial.strategy, trial.fraction, trial.seed, self.device),
                                self.prepared, self.images, progress=progress, cache=self.cache,
                                on_epoch=RungMarker(self.halving_rate, trial.rung) if self.halving_rate else None,
                                resume=_resume_state(saved, trial), train=not trial.stop)
        except (KeyboardInterrupt, StorageError, StoreError):
            raise
        except Exception as e:  # a failed trial is recorded and the study goes on
            message = str(e) if isinstance(e, MedTransferError) else f"{type(e).__name__}: {e}"
            log_failure(self.folder, trial)
            return TrialReport(trial, dict(status="failed", error=message,
                                           seconds=before + time.perf_counter() - started, device=self.where),
                               line=failed_line(trial.label(), message))
        seconds = before + time.perf_counter() - started
        if outcome.fit.stopped == "paused":  # saved with its state: it resumes, or is tested and recorded if it loses
            return self._pause(trial, outcome, seconds)
        staged = self._stage_model(trial, outcome)
        record = self._record(trial, outcome, seconds)
        rung = outcome.fit.history[-1]["rung"] if trial.stop else None  # successive halving stopped it there
        line = finished_line(trial.label(), record, outcome.task.scorer.metric, stopped_at_rung=rung)
        return TrialReport(trial, record, str(staged) if staged else None, line)

    def _pause(self, trial: Trial, outcome: TrialOutcome, seconds: float) -> TrialReport:
        """Save a trial paused at a halving rung, with what it resumes from."""
        fit, metric = outcome.fit, outcome.task.scorer.metric
        PausedTrials(self.folder).save(trial.id, {"resume": outcome.resume_state(),
                                                  "record": {"seconds": seconds, "history": fit.history}})
        line = paused_line(trial.label(), fit.history[-1]["rung"], len(fit.history), fit.epochs, metric.label,
                           outcome.val_score, seconds)
        return TrialReport(trial, {"status": "paused", "seconds": seconds}, None, line)

    def _stage_model(self, trial: Trial, outcome: TrialOutcome):
        """The trial's model in the staging folder (None when the study keeps no model of it)."""
        fit, metric = outcome.fit, outcome.task.scorer.metric
        if outcome.diverged is not None or self.config.checkpoints == "none" or fit.stopped == "pruned":
            return None
        staged = self.folder.staged_model(trial.id, os.getpid())
        save_model(staged, outcome.weights_module,
                   {**outcome.spec, "trial": trial.id, f"val_{metric.name}": outcome.val_score,
                    "test_metrics": outcome.test_metrics}, complete=True)
        if outcome.calibration is not None:  # the model's reliability diagram beside it, as a run folder has it
            plot_reliability(outcome.calibration.curves, staged, what="test split")
        return staged

    def _record(self, trial: Trial, outcome: TrialOutcome, seconds: float) -> dict:
        """The store's record of a trial that ended (finished, stopped at a rung, or diverged)."""
        fit, split = outcome.fit, self.prepared.split
        return dict(
            status="failed" if outcome.diverged else "done",
            error=str(outcome.diverged) if outcome.diverged else None,
            val_score=outcome.val_score, test_metrics=outcome.test_metrics, best_epoch=fit.best_epoch,
            epochs_run=len(fit.history), stopped=fit.stopped,
            train_size=int(round(len(split.train) * trial.fraction)),
            trainable_parameters=outcome.trainable_parameters, seconds=seconds,
            device=self.where, history=fit.history, samples=split.test, cases=outcome.case_columns(),
            val_samples=split.val, val_cases=outcome.val_case_columns(),
        )


def _resume_state(saved: dict | None, trial: Trial) -> dict | None:
    """What a paused trial goes on from: its saved state, its rungs marked promoted unless it stops here."""
    resume = saved["resume"] if saved is not None else None
    if resume is not None and not trial.stop:  # it goes on from its rung
        resume = {**resume, "fit": {**resume["fit"], "history": promote(resume["fit"]["history"])}}
    return resume


def log_failure(folder: StudyFolder, trial: Trial) -> None:
    """Append the traceback being handled to the study's failures log (a log that cannot be written is skipped)."""
    try:
        with open(folder.failures_log, "a") as f:
            f.write(f"== {trial.id} ==\n{traceback.format_exc()}\n")
    except OSError:
        pass
