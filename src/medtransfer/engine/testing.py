"""A trained trial's predictions on validation and test, calibrated on validation where the task calibrates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medtransfer.networks import TransferNet
from medtransfer.tasks import Task
from medtransfer.training import Trainer
from medtransfer.training.calibration import CalibrationCheck


def score_test_split(trainer: Trainer, net: TransferNet, loader, data, indices: np.ndarray):
    """(predictions, targets) of ``data.samples[indices]`` (the order of ``loader``) as the test metrics score
    them: at each image's own size when the task scores there (:meth:`~medtransfer.tasks.Task.own_size_targets`),
    else at the input size."""
    own = trainer.task.codec.own_size_targets(data, indices)
    sizes = None if own is None else [np.shape(t)[-2:] for t in own]
    predictions, targets, _ = trainer.predict(net, loader, sizes=sizes)
    return predictions, (targets if own is None else own)


@dataclass
class Predictions:
    """A trained network's predictions on validation and test, with the calibration fitted between them (if any)
    and the test predictions before it."""

    val: object
    val_targets: object
    test: object
    test_targets: object
    calibration: CalibrationCheck | None = None
    uncalibrated_test: object = None


def calibrated_predictions(trainer: Trainer, task: Task, net: TransferNet, val_loader, test_loader,
                           spec: dict) -> Predictions:
    """One pass each over validation and test for the logits, then the task's predictions of them before and after
    its calibration is fitted on validation (``spec`` takes the fitted task's spec and the calibration's summary)."""
    val_outputs, val_targets, _ = trainer.predict(net, val_loader, raw=True)
    test_outputs, test_targets, _ = trainer.predict(net, test_loader, raw=True)
    uncalibrated = task.scorer.predict(torch.as_tensor(test_outputs)).numpy()
    fitted = task.scorer.calibrate(val_outputs, val_targets)
    check = task.scorer.calibration_check(test_outputs, test_targets)
    calibration = CalibrationCheck({**fitted, **{f"test_{k}": v for k, v in check.summary.items()}}, check.curves)
    val_predictions = task.scorer.predict(torch.as_tensor(val_outputs)).numpy()
    test_predictions = task.scorer.predict(torch.as_tensor(test_outputs)).numpy()
    spec.update(task.config(), calibration=calibration.summary)
    return Predictions(val_predictions, val_targets, test_predictions, test_targets, calibration, uncalibrated)


def plain_predictions(trainer: Trainer, net: TransferNet, val_loader, test_loader, data,
                      test_idx: np.ndarray) -> Predictions:
    """The predictions on validation, and on test as the test metrics score them (:func:`score_test_split`)."""
    val_predictions, val_targets, _ = trainer.predict(net, val_loader)
    test_predictions, test_targets = score_test_split(trainer, net, test_loader, data, test_idx)
    return Predictions(val_predictions, val_targets, test_predictions, test_targets)
