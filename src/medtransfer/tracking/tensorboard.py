"""TensorBoard: one folder of event files per trial under ``<study folder>/tensorboard/<trial>/``, with its
per-epoch curves as scalars and its parameters and final metrics as hparams (TensorBoard's HParams tab)."""

from __future__ import annotations

import shutil
from pathlib import Path

from medtransfer.tracking.base import RunMemory, StudyFacts, StudyResults, TrialFacts

FOLDER = "tensorboard"


def trial_folder_name(key: str) -> str:
    """A trial id (``tune:2|0.5|0``) as a folder name (``tune-2_0.5_0``)."""
    return key.replace("|", "_").replace(":", "-")


class TensorBoardTracker:
    key = "tensorboard"

    def __init__(self):
        self.label = "tensorboard"
        self.root: Path | None = None
        self.memory: RunMemory | None = None

    def on_study_start(self, study: StudyFacts, memory: RunMemory) -> None:
        self.root, self.memory = Path(study.folder) / FOLDER, memory
        self.label = f"tensorboard ({self.root})"
        self.root.mkdir(parents=True, exist_ok=True)

    def on_trial_done(self, trial: TrialFacts) -> None:
        """The trial's folder, written anew: the event files come from the store's record, so a rewrite after a
        kill gives the same curves and never a second copy of them."""
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        known = self.memory.get(trial.key)
        folder = self.root / trial_folder_name(trial.key)
        if known is not None and known[1] and folder.is_dir():
            return
        shutil.rmtree(folder, ignore_errors=True)
        writer = SummaryWriter(log_dir=str(folder))
        try:
            for record in trial.history:
                for name, value in record.items():
                    if name != "epoch" and _number(value):
                        writer.add_scalar(name, float(value), int(record.get("epoch", 0)))
            finals = {k: float(v) for k, v in trial.metrics.items() if _number(v)}
            params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in trial.params.items()}
            params["status"] = trial.status
            for summary in hparams(params, finals):
                writer.file_writer.add_summary(summary)
            last = int(trial.history[-1].get("epoch", 0)) if trial.history else 0
            for name, value in finals.items():
                writer.add_scalar(name, value, last)
        finally:
            writer.close()
        self.memory.remember(trial.key, str(folder), True)

    def on_study_end(self, results: StudyResults) -> None:
        pass  # the curves are all TensorBoard shows; the summary and the model live in the study folder

    def on_artifacts(self, paths: list[Path]) -> None:
        pass


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == float(v)
