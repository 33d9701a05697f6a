"""Image classification: binary, multi-class or multi-label, with a new linear classifier on the pooled features.

Sources: MedMNIST files, image folders (``<class>/…`` or ``<split>/<class>/…``) and CSV manifests. The study metric is
the ROC AUC (macro one-vs-rest for multi-class, macro over labels for multi-label); the study stores each test
image's probabilities and target, so AUC can be recomputed on resampled cases. The report adds ROC curves and
Grad-CAM heat maps of the recommended model beside its reference.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medtransfer.data.sources.base import LabelledImages
from medtransfer.data.sources.csv_manifest import CsvManifestSource
from medtransfer.data.sources.folder import ImageFolderSource
from medtransfer.data.sources.medmnist import MedMNISTSource
from medtransfer.errors import ConfigError, DataError, parameter_error
from medtransfer.metrics import auc_score, bootstrap_metrics
from medtransfer.metrics.paired import batched_auc
from medtransfer.tasks.base import Task, TaskParts
from medtransfer.tasks.classification_report import ClassificationReport, ProbabilityWriter
from medtransfer.tasks.head import HeadFactory
from medtransfer.tasks.inputs import TaskInputs, TaskOptions
from medtransfer.tasks.metric import Metric
from medtransfer.tasks.registry import register_task
from medtransfer.tasks.scorer import Scorer
from medtransfer.tasks.targets import TargetCodec
from medtransfer.tasks.writer import TaskWriter
from medtransfer.training.calibration import fit_temperature, temperature_check

CALIBRATIONS = ("temperature", "none")


def balanced_class_weights(targets: np.ndarray, num_classes: int, label_kind: str) -> np.ndarray:
    """Weights inversely proportional to class frequency (per-label positive weights for multi-label), mean 1."""
    targets = np.asarray(targets)
    if label_kind == "multilabel":
        pos = targets.sum(0).astype(np.float64)
        return np.where(pos > 0, (len(targets) - pos) / np.maximum(pos, 1), 1.0)
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(targets) / (num_classes * np.maximum(counts, 1)), 0.0)
    return w / w[counts > 0].mean()


def auc_metric(label_kind: str) -> Metric:
    def statistic(cases: dict, resamples: np.ndarray) -> np.ndarray:
        probs = np.asarray(cases["probs"], dtype=np.float64)
        return batched_auc(probs, np.asarray(cases["targets"]), label_kind, resamples)

    return Metric("auc", "AUC", statistic, scale="0.5 = chance, 1 = perfect", chance=0.5,
                  others=("accuracy", "balanced_accuracy", "sensitivity", "specificity"),
                  headings={"balanced_accuracy": "balanced accuracy"})


@dataclass(frozen=True)
class ClassificationOptions(TaskOptions):
    calibration: str = "temperature"  # temperature scaling fitted on validation, or none

    def problems(self) -> list[str]:
        if self.calibration not in CALIBRATIONS:
            return [parameter_error("calibration", "the classification task options",
                                    f"one of {', '.join(CALIBRATIONS)}", self.calibration)]
        return []


class ClassificationInputs(TaskInputs):
    def describe(self, data, parts: dict[str, np.ndarray]) -> dict:
        t = data.targets()

        def per_class(idx):
            counts = np.bincount(t[idx], minlength=data.num_classes) if t.ndim == 1 else t[idx].sum(0)
            return {n: int(c) for n, c in zip(data.class_names, counts)}

        return {"label_kind": data.label_kind, "per_class": {k: per_class(idx) for k, idx in parts.items()}}

    def check_split(self, data, split) -> None:
        """AUC needs positives and negatives of every class (label) in validation and test."""
        t = data.targets()
        for part in ("val", "test"):
            idx = getattr(split, part)
            if not len(idx):
                continue
            if t.ndim == 1:
                missing = [n for c, n in enumerate(data.class_names) if not (t[idx] == c).any()]
                what = "has no images of"
            else:
                pos = t[idx].sum(0)
                missing = [n for j, n in enumerate(data.class_names) if pos[j] == 0 or pos[j] == len(idx)]
                what = "has no positive and negative images of"
            if missing:
                how = ("add such images to it in the source's split column, or leave the split out and medtransfer "
                       "makes a stratified one" if split.given else "use more images, or fewer classes")
                raise DataError(f"{data.name}: the {'given ' if split.given else ''}{'validation' if part == 'val' else part} "
                                f"split {what} {', '.join(repr(m) for m in missing)}, so its AUC cannot be computed; "
                                f"{how}.")

    def examples(self, data, test_idx: np.ndarray, targets: Sequence, per_class: int = 2) -> np.ndarray:
        """Up to ``per_class`` test images of each class (``limit`` in all), the first ones in test-split order."""
        t, limit = np.asarray(targets), self.examples_limit
        chosen: list[int] = []
        for c in range(len(data.class_names)):
            members = np.flatnonzero(t == c if t.ndim == 1 else t[:, c] == 1)
            chosen += [int(i) for i in members[:per_class] if i not in chosen][: max(0, limit - len(chosen))]
        return np.asarray(chosen, dtype=np.int64)


class ClassificationScorer(Scorer):
    """Cross-entropy (BCE per label for multi-label) with optional class weights; probabilities after the fitted
    temperature; AUC."""

    def __init__(self, label_kind: str, class_weights: np.ndarray | None = None, label_smoothing: float = 0.0,
                 calibration: str = "temperature", temperature: float = 1.0):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
                np.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"temperature {temperature!r} must be a number > 0")
        self.label_kind, self.label_smoothing, self.calibration = label_kind, label_smoothing, calibration
        self.temperature = float(temperature)
        self._weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.metric = auc_metric(label_kind)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = None if self._weights is None else self._weights.to(outputs.device)
        if self.label_kind == "multilabel":
            return F.binary_cross_entropy_with_logits(outputs, targets.float(), pos_weight=w)
        return F.cross_entropy(outputs, targets, weight=w, label_smoothing=self.label_smoothing)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Probabilities: softmax (sigmoid for multi-label) of the logits divided by the fitted temperature."""
        z = outputs.float() / self.temperature if self.temperature != 1.0 else outputs.float()
        p = torch.sigmoid(z) if self.label_kind == "multilabel" else torch.softmax(z, dim=1)
        return p.cpu()

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        return {"targets": np.asarray(targets), "probs": np.asarray(predictions)}

    def score(self, predictions, targets) -> float:
        return auc_score(np.asarray(predictions), np.asarray(targets), self.label_kind)

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        return bootstrap_metrics(predictions, targets, self.label_kind, seed=seed)

    @property
    def calibrates(self) -> bool:
        return self.calibration == "temperature"

    def calibrate(self, outputs, targets) -> dict:
        """Temperature scaling on the validation split's logits (see :mod:`medtransfer.training.calibration`)."""
        self.temperature = fit_temperature(np.asarray(outputs), np.asarray(targets), self.label_kind)
        return {"method": "temperature scaling", "fitted_on": "validation", "temperature": self.temperature}

    def calibration_check(self, outputs, targets):
        return temperature_check(np.asarray(outputs), np.asarray(targets), self.temperature, self.label_kind)

    def fitted(self) -> dict:
        return {"temperature": self.temperature}


class ProbabilityTables(TaskWriter):
    """Test predictions as probabilities per class; ``predict`` writes them per image (:class:`ProbabilityWriter`)."""

    uses = "assigning one of the classes above"
    outputs = None

    def predictions_csv(self, indices: np.ndarray, predictions, targets, *, uncalibrated=None) -> str:
        """``p_<class>``: the probabilities a delivered model gives (calibrated, when calibration is on);
        ``uncalibrated_p_<class>``: before the temperature, where one was fitted."""
        buf = io.StringIO()
        w = csv.writer(buf)
        t = np.asarray(targets).reshape(len(targets), -1)
        extra = [] if uncalibrated is None else [f"uncalibrated_p_{n}" for n in self.class_names]
        w.writerow(["sample", *[f"target_{i}" for i in range(t.shape[1])], *[f"p_{n}" for n in self.class_names],
                    *extra])
        rows = zip(indices, t, predictions, predictions if uncalibrated is None else uncalibrated)
        for i, tt, p, u in rows:
            w.writerow([int(i), *map(int, tt), *(f"{v:.6f}" for v in p),
                        *(() if uncalibrated is None else (f"{v:.6f}" for v in u))])
        return buf.getvalue()

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> ProbabilityWriter:
        return ProbabilityWriter(self.scorer, self.class_names, saved, out_dir, heatmaps)

    def exported_output(self, size: int) -> dict:
        return {"shape": ["batch", len(self.class_names)], "meaning": "class probabilities (softmax of the logits "
                "divided by the temperature; sigmoid per label for multi-label models)", "classes": self.class_names}


def classification_parts(spec: dict, class_weights=None, label_smoothing: float = 0.0) -> TaskParts:
    """The parts for ``spec``. Models saved before calibration existed have no temperature: 1, i.e. none."""
    calibration = spec.get("calibration_method", "temperature")
    CLASSIFICATION.inputs.options({"calibration": calibration})
    names, kind = list(spec["class_names"]), spec.get("label_kind", "binary")
    scorer = ClassificationScorer(kind, class_weights, label_smoothing, calibration, spec.get("temperature", 1.0))
    return TaskParts(head=HeadFactory(), scorer=scorer, writer=ProbabilityTables(scorer, names),
                     report=ClassificationReport("classification", scorer.metric, names, kind),
                     spec={"class_names": names, "label_kind": kind, "calibration_method": calibration})


def classification_for_data(data, train_targets, config) -> TaskParts:
    t = config.train
    weights = (balanced_class_weights(np.asarray(train_targets), data.num_classes, data.label_kind)
               if t.class_weighting else None)
    spec = {"class_names": data.class_names, "label_kind": data.label_kind,
            "calibration_method": CLASSIFICATION.inputs.options(config.task_options).calibration}
    return classification_parts(spec, weights, t.label_smoothing)


CLASSIFICATION = register_task(Task(
    "classification",
    inputs=ClassificationInputs(
        sources=(MedMNISTSource, CsvManifestSource, ImageFolderSource), data_type=LabelledImages,
        detect_priority=0,  # asked last: a folder of folders is a class per folder
        layouts=("a MedMNIST name or .npz, a CSV manifest (path,label[,split,patient_id]) or a folder laid out as "
                 "<class>/<image> or <split>/<class>/<image>"),
        options_type=ClassificationOptions),
    codec=TargetCodec(), build=classification_for_data, rebuild=classification_parts))
