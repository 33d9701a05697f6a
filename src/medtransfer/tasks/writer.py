"""A task's writer: its run folder's test predictions, what ``predict`` writes for new images, and what a delivered
model gives and is for (the exported graph's output, the model card's words)."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch

from medtransfer.errors import ConfigError
from medtransfer.tasks.scorer import Scorer


class PredictionWriter:
    """Writes what a saved model predicts for new, unlabelled images, batch by batch, into an output folder; a task
    returns one from :meth:`TaskWriter.prediction_writer`. ``images`` are
    :class:`~medtransfer.delivery.inputs.NewImage` objects (the path as given, the pixels at their own size, the
    model's input tensor); ``outputs`` are the network's raw outputs for them."""

    def add(self, images: list, outputs: torch.Tensor) -> None:
        raise NotImplementedError

    def close(self) -> list:
        """Finish the files; returns their paths."""
        return []


class TaskWriter:
    """By default: the stored case columns as the test predictions, no ``predict`` for new images, the scorer's
    predictions as the delivered outputs."""

    #: what a model of the task is for, in the model card's words
    uses = "predicting the classes above"
    #: what the model outputs when it has no calibrated probabilities (``None``: probabilities that could be)
    outputs: str | None = "no class probabilities"
    #: whether ``predict`` takes NIfTI volumes (slice by slice)
    volumes = False
    #: why ``medtransfer export`` cannot export this task's models, or ``None`` when it can
    export_refusal: str | None = None

    def __init__(self, scorer: Scorer, class_names: list[str] | tuple[str, ...] = ()):
        self.scorer, self.class_names = scorer, list(class_names)

    def predictions_csv(self, indices: np.ndarray, predictions, targets, *, uncalibrated=None) -> str:
        """The test predictions of a run folder, one row per test case: by default the stored case columns.
        ``uncalibrated``: the predictions before the scorer's calibration, where it calibrates."""
        cases = self.scorer.case_columns(predictions, targets)
        buf = io.StringIO()
        w = csv.writer(buf)
        header, columns = ["sample"], []
        for name, col in cases.items():
            col = np.asarray(col)
            col = col.reshape(len(col), -1)
            header += [name] if col.shape[1] == 1 else [f"{name}_{j}" for j in range(col.shape[1])]
            columns.append(col)
        w.writerow(header)
        for i, row in enumerate(np.asarray(indices)):
            w.writerow([int(row), *[_cell(v) for col in columns for v in col[i]]])
        return buf.getvalue()

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> PredictionWriter:
        """The writer of the predictions for new images (``medtransfer predict``) of the saved model ``saved`` (a
        :class:`~medtransfer.model.saved.SavedModel`) into ``out_dir``."""
        raise ConfigError("predicting new images is not available for this model's task")

    def delivered_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """What a delivered (exported) model returns for a batch of network outputs, traceable: by default the
        scorer's predictions of them."""
        return self.scorer.predict(outputs)

    def exported_output(self, size: int) -> dict:
        """The exported graph's output for the sidecar: its ``shape``, its ``meaning`` and its ``classes``."""
        return {"shape": ["batch", len(self.class_names)], "meaning": "the task's delivered outputs",
                "classes": self.class_names}


def _cell(v) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.6f}" if isinstance(v, float) else str(v)
