"""What one trial produced, and what a paused trial continues from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from medtransfer.errors import TrainingDiverged
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks import Task
from medtransfer.training import FitResult
from medtransfer.training.calibration import CalibrationCheck
from medtransfer.training.state import TrainState


@dataclass
class PausedTrial:
    """What a paused trial goes on from: its trainer's state, the precision it trained in, and the records of its
    strategy's earlier stages (which do not run again). Saved as a plain dict (:meth:`to_dict`)."""

    fit: TrainState
    precision: str
    stages: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"fit": self.fit.to_dict(), "precision": self.precision, "stages": self.stages}

    @classmethod
    def from_dict(cls, saved: dict) -> PausedTrial:
        return cls(TrainState.from_dict(saved["fit"]), saved["precision"], dict(saved.get("stages") or {}))


@dataclass
class TrialOutcome:
    """What one trial produced, before anything is written."""

    strategy: Strategy
    task: Task
    fit: FitResult
    test_predictions: object
    test_targets: object
    val_predictions: object
    val_targets: object
    val_score: float
    test_metrics: dict
    net: TransferNet
    spec: dict
    device: str
    diverged: TrainingDiverged | None = None
    trainable_parameters: int = 0
    calibration: CalibrationCheck | None = None  # summary: the fit on validation, the ECE on test
    uncalibrated_test_predictions: object = None
    train_idx: np.ndarray | None = None  # the samples this trial trained on (its fraction of the training split)

    def resume_state(self) -> dict | None:
        """A paused trial's state, for ``run_trial(..., resume=...)`` (None unless the trial paused): a plain dict
        (:meth:`PausedTrial.to_dict`), as a file keeps it."""
        if self.fit.state is None:
            return None
        stages = {s.name: self.spec[s.name] for s in self.strategy.stages if s.name in self.spec}
        return PausedTrial(self.fit.state, self.spec["precision"], stages).to_dict()

    @property
    def weights_module(self) -> torch.nn.Module:
        """What a saved model holds (the timm model, or encoder + decoder)."""
        return self.net.weights_module

    def case_columns(self) -> dict:
        """What the study stores per test case."""
        return self.task.scorer.case_columns(self.test_predictions, self.test_targets)

    def val_case_columns(self) -> dict:
        """The same per validation case (the recommendation's uncertainty is computed from them)."""
        return self.task.scorer.case_columns(self.val_predictions, self.val_targets)
