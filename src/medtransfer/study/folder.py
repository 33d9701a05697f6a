"""The study folder's layout: where a study keeps its store, models, paused trials, frozen-prefix cache, failures,
summaries and report. Every other module asks :class:`StudyFolder` for these paths, so the layout is spelt once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: the study's durable record (:class:`~medtransfer.study.store.StudyStore`)
STORE = "study.sqlite"
#: the kept models: ``models/<strategy>/`` (checkpoint policy ``best``) or ``models/<trial>/`` (policy ``all``)
MODELS = "models"
#: where workers save each trial's model until the study keeps or drops it
STAGED = ".staged-models"
#: successive halving's paused trials, one ``<trial>.pt`` each
PAUSED = "paused"
#: the frozen-prefix outputs spilled to disk (memmap), removed when the run ends
CACHE = "cache"
#: the traceback of every trial that raised an error
FAILURES = "failures.log"
#: what a finished run leaves for its reader: the summary table, the summary with its recommendation, every trial
SUMMARY_CSV, SUMMARY_JSON, TRIALS_CSV = "summary.csv", "summary.json", "trials.csv"
#: the self-contained report page, and the figures it shows as PNG and SVG files
REPORT, FIGURES = "report.html", "figures"
#: the file that makes a folder a saved model (written by :func:`~medtransfer.model.saved.save_model`)
MODEL_SPEC = "model.json"


def strategy_folder_name(strategy: str) -> str:
    """``tune:2`` → ``tune-2``: a strategy as a folder name that every file system accepts."""
    return strategy.replace(":", "-")


def trial_folder_name(trial_id: str) -> str:
    """``tune:2|0.5|0`` → ``tune-2_0.5_0``: a trial id as a file or folder name."""
    return strategy_folder_name(trial_id.replace("|", "_"))


@dataclass(frozen=True)
class StudyFolder:
    """The paths of one study folder; it reads nothing but whether a file or folder is there."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def store_file(self) -> Path:
        return self.path / STORE

    def is_study(self) -> bool:
        """Whether the folder holds a study (its store file)."""
        return self.store_file.is_file()

    # -- models ------------------------------------------------------------------------------------------
    @property
    def models(self) -> Path:
        return self.path / MODELS

    def strategy_model(self, strategy: str) -> Path:
        """Where the best validation trial of ``strategy`` is kept (checkpoint policy ``best``)."""
        return self.models / strategy_folder_name(strategy)

    def trial_model(self, trial_id: str) -> Path:
        """Where a trial's model is kept under checkpoint policy ``all``."""
        return self.models / trial_folder_name(trial_id)

    def kept_models(self) -> list[Path]:
        """The folders under ``models/`` that hold a saved model, by name."""
        return sorted(d for d in self.models.glob("*") if (d / MODEL_SPEC).is_file())

    def saved_model(self, strategy: str, trial_ids: list[str] = ()) -> Path | None:
        """The saved model of ``strategy``: its ``models/<strategy>/``, else the first of ``trial_ids`` (best first)
        whose ``models/<trial>/`` holds one; None when the study kept none."""
        for folder in [self.strategy_model(strategy), *map(self.trial_model, trial_ids)]:
            if (folder / MODEL_SPEC).is_file():
                return folder
        return None

    @property
    def staged(self) -> Path:
        return self.path / STAGED

    def staged_model(self, trial_id: str, pid: int) -> Path:
        """Where the worker with process id ``pid`` saves a trial's model for the study to keep or drop."""
        return self.staged / f"{trial_folder_name(trial_id)}-{pid}"

    # -- work in progress --------------------------------------------------------------------------------
    @property
    def paused(self) -> Path:
        return self.path / PAUSED

    def paused_trial(self, trial_id: str) -> Path:
        return self.paused / f"{trial_folder_name(trial_id)}.pt"

    @property
    def cache(self) -> Path:
        return self.path / CACHE

    @property
    def failures_log(self) -> Path:
        return self.path / FAILURES

    # -- what a run leaves -------------------------------------------------------------------------------
    @property
    def summary_csv(self) -> Path:
        return self.path / SUMMARY_CSV

    @property
    def summary_json(self) -> Path:
        return self.path / SUMMARY_JSON

    @property
    def trials_csv(self) -> Path:
        return self.path / TRIALS_CSV

    @property
    def summaries(self) -> list[Path]:
        """The tables a finished run writes (``summary.csv``, ``summary.json``, ``trials.csv``)."""
        return [self.summary_csv, self.summary_json, self.trials_csv]

    def saved_names(self) -> list[str]:
        """What a finished run leaves, as its closing line names it: the store, the summaries and ``models/`` if
        the study kept any."""
        return [STORE, *(p.name for p in self.summaries), *([f"{MODELS}/"] if self.models.is_dir() else [])]

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def figures(self) -> Path:
        return self.path / FIGURES
