"""What a tracker is told (a study, its trials, its results) and the protocol every tracker follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class TrialFacts:
    """One recorded trial (or one ``train`` run), as trackers log it."""

    key: str  # the trial's id in the store: what the tracker's run is remembered under
    name: str  # the run's name, e.g. "tune:2 · 100% · seed 0"
    params: dict  # backbone, strategy, frozen groups, fraction, seed, geometry, precision, …
    history: list[dict]  # the trainer's epoch records (train_loss, val_loss, val_<metric>, …) as the store has them
    metrics: dict[str, float]  # the final ones: final_val_<metric>, test_<metric> with _low / _high
    tags: dict[str, str]  # task, data fingerprint, status (finished / pruned / failed) and its reason
    status: str = "finished"
    ended: float | None = None  # when it was recorded (seconds since the epoch), with ``seconds`` its time span
    seconds: float | None = None


@dataclass
class StudyFacts:
    """A study (or a run) as a whole, when it starts."""

    name: str  # the experiment's name (the study or run folder's)
    folder: Path  # where local trackers write (TensorBoard's event files, MLflow's default SQLite store)
    config: dict  # the study's configuration
    tags: dict[str, str] = field(default_factory=dict)
    nested: bool = True  # a study: a parent run with a child per trial; a single run: one run alone


@dataclass
class StudyResults:
    """What a study (or a run) left when it ended."""

    tags: dict[str, str]  # the recommendation, the rule
    artifacts: list[Path]  # files to keep with the study's run: summary table, configuration, model card
    model: Path | None = None  # the recommended model's folder (model.json + model.safetensors), logged once
    model_key: str = "model"  # what the logged model is remembered under (a new recommendation is logged anew)


class RunMemory(Protocol):
    """Each key's run id in one tracker, and whether it was logged in full; a study keeps it in its store."""

    def get(self, key: str) -> tuple[str, bool] | None: ...

    def remember(self, key: str, run_id: str, complete: bool) -> None: ...


class Tracker(Protocol):
    """A place runs are logged to. Every call may raise: :class:`~medtransfer.tracking.guard.Tracking` reports it."""

    label: str  # how warnings name it, e.g. "mlflow (sqlite:///…/mlflow.db)"
    key: str  # what the store remembers its runs under (a tracker and its URI)

    def on_study_start(self, study: StudyFacts, memory: RunMemory) -> None: ...

    def on_trial_done(self, trial: TrialFacts) -> None: ...

    def on_study_end(self, results: StudyResults) -> None: ...

    def on_artifacts(self, paths: list[Path]) -> None: ...


class DictMemory:
    """A :class:`RunMemory` that lasts one process (a ``train`` run, which is never resumed)."""

    def __init__(self):
        self.runs: dict[str, tuple[str, bool]] = {}

    def get(self, key: str) -> tuple[str, bool] | None:
        return self.runs.get(key)

    def remember(self, key: str, run_id: str, complete: bool) -> None:
        self.runs[key] = (run_id, complete)
