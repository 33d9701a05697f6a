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

from medtransfer.backbones import Backbone
from medtransfer.data.sources.base import LabelledImages
from medtransfer.data.sources.csv_manifest import CsvManifestSource
from medtransfer.data.sources.folder import ImageFolderSource
from medtransfer.data.sources.medmnist import MedMNISTSource
from medtransfer.metrics import auc_score, bootstrap_metrics
from medtransfer.errors import ConfigError, DataError, parameter_error
from medtransfer.metrics.paired import batched_auc
from medtransfer.tasks.base import Metric, PredictionWriter, ReportSection, Task, TaskOptions
from medtransfer.tasks.registry import register_task


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


class ClassificationReport(ReportSection):
    head = "classifier"

    def describe_task(self, card: dict) -> str:
        kind = card.get("label_kind")
        return {"binary": "binary classification", "multiclass": "multi-class classification",
                "multilabel": "multi-label classification"}.get(kind, kind or "classification")

    def split_method(self) -> str:
        return "stratified and grouped by patient where known"

    def metrics_note(self, facts) -> str:
        classes = self.task.class_names
        if self.task.label_kind == "binary" and len(classes) == 2:
            return (f"each image is assigned its most probable class (threshold 0.5); sensitivity and specificity "
                    f"treat '{classes[1]}' as the positive class.")
        if self.task.label_kind == "multilabel":
            return "a label counts as present at probability 0.5 or more; sensitivity and specificity are averaged over labels."
        return "each image is assigned its most probable class; sensitivity and specificity are averaged over classes."

    def setup_items(self, config: dict) -> list[tuple[str, str]]:
        return [("class weighting", "balanced" if config.get("train", {}).get("class_weighting") else "none")]

    def figures(self, facts, out_dir) -> list:
        """ROC of the recommended strategy and its reference from the stored test predictions."""
        from medtransfer.plots import RocRuns, plot_roc

        fraction, runs = facts.fractions[0], []
        for strategy in facts.pair():
            cell = facts.runs(strategy, fraction) if strategy else {}
            if cell:
                preds = list(cell.values())
                if all(np.array_equal(p[0], preds[0][0]) for p in preds):
                    runs.append(RocRuns(strategy, preds[0][1]["targets"], [p[1]["probs"] for p in preds]))
        return [plot_roc(runs, self.task.label_kind, self.task.class_names, fraction, facts.summary.recommended,
                         out_dir)]

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        return [("saliency", "Where the models look: Grad-CAM on test images", "heat maps")]

    def model_figures(self, facts, models, examples, out_dir, *, models_note: str) -> list:
        from medtransfer.plots import SaliencyImage, plot_saliency

        images = [SaliencyImage(np.broadcast_to(im, (3, *im.shape[1:])).copy(), int(t), self.task.class_names[int(t)], ref)
                  for im, t, ref in zip(examples["images"], examples["targets"], examples["refs"])]
        return [plot_saliency(images, [(s, saved.net) for s, saved in models],
                              {s: saved.task.predict for s, saved in models}, out_dir, fraction_note=models_note)]


class ProbabilityWriter(PredictionWriter):
    """``predictions.csv``: per image the path as given, each class's probability (``p_<class>``, calibrated as the
    model is) and the predicted class (multi-label: the labels at 0.5 or more, joined by ';'); with ``heatmaps``, a
    Grad-CAM overlay of the predicted class per image in ``heatmaps/`` (:mod:`medtransfer.plots.saliency`)."""

    def __init__(self, task: ClassificationTask, saved, out_dir, heatmaps: bool):
        from pathlib import Path

        from medtransfer.output_files import CsvTable, FileNames

        self.task, self.saved, self.out_dir = task, saved, Path(out_dir)
        self.table = CsvTable(self.out_dir / "predictions.csv",
                              ["path", *[f"p_{n}" for n in task.class_names], "predicted"])
        self.heatmaps = self.out_dir / "heatmaps" if heatmaps else None
        self.names = FileNames()
        self.written: list = []

    def add(self, images: list, outputs: torch.Tensor) -> None:
        probs = self.task.predict(outputs).numpy()
        names = self.task.class_names
        for im, p in zip(images, probs):
            predicted = (";".join(n for n, v in zip(names, p) if v >= 0.5) if self.task.label_kind == "multilabel"
                         else names[int(p.argmax())])
            self.table.add([im.path, *map(float, p), predicted])
        if self.heatmaps is not None:
            self._draw_heatmaps(images, probs)

    def _draw_heatmaps(self, images: list, probs: np.ndarray) -> None:
        from PIL import Image
        from pytorch_grad_cam.utils.image import show_cam_on_image

        from medtransfer.plots import SaliencyImage, gradcam_maps

        self.heatmaps.mkdir(parents=True, exist_ok=True)
        shown = [SaliencyImage(im.tensor.expand(3, -1, -1).numpy(), int(p.argmax()),
                               self.task.class_names[int(p.argmax())], im.path) for im, p in zip(images, probs)]
        maps, _p, _shape = gradcam_maps(self.saved.net, shown, self.task.predict)
        for im, cam in zip(images, maps):
            h, w = im.size
            rgb = np.broadcast_to(im.pixels[..., None], (h, w, 3)) if im.pixels.ndim == 2 else im.pixels
            cam = np.asarray(Image.fromarray(np.float32(cam)).resize((w, h), Image.BILINEAR))
            overlay = show_cam_on_image(rgb.astype(np.float32) / 255.0, np.clip(cam, 0, 1), use_rgb=True,
                                        image_weight=0.55)
            path = self.heatmaps / self.names.name(im.path, ".png")
            Image.fromarray(overlay).save(path)
            self.written.append(path)

    def close(self) -> list:
        return [self.table.close(), *self.written]


CALIBRATIONS = ("temperature", "none")


@dataclass(frozen=True)
class ClassificationOptions(TaskOptions):
    calibration: str = "temperature"  # temperature scaling fitted on validation, or none

    def problems(self) -> list[str]:
        if self.calibration not in CALIBRATIONS:
            return [parameter_error("calibration", "the classification task options",
                                    f"one of {', '.join(CALIBRATIONS)}", self.calibration)]
        return []


@register_task
class ClassificationTask(Task):
    name = "classification"
    sources = (MedMNISTSource, CsvManifestSource, ImageFolderSource)
    data_type = LabelledImages
    detect_priority = 0  # asked last: a folder of folders is a class per folder
    layouts = ("a MedMNIST name or .npz, a CSV manifest (path,label[,split,patient_id]) or a folder laid out as "
               "<class>/<image> or <split>/<class>/<image>")
    Report = ClassificationReport
    Options = ClassificationOptions

    def __init__(self, class_names: list[str], label_kind: str, class_weights: np.ndarray | None = None,
                 label_smoothing: float = 0.0, calibration: str = "temperature", temperature: float = 1.0):
        self.options({"calibration": calibration})
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
                np.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"temperature {temperature!r} must be a number > 0")
        self.class_names = list(class_names)
        self.label_kind = label_kind
        self.label_smoothing = label_smoothing
        self.calibration = calibration
        self.temperature = float(temperature)
        self._weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)

    @classmethod
    def for_data(cls, data, train_targets, config) -> ClassificationTask:
        train_config = config.train
        weights = (balanced_class_weights(np.asarray(train_targets), data.num_classes, data.label_kind)
                   if train_config.class_weighting else None)
        return cls(data.class_names, data.label_kind, weights, label_smoothing=train_config.label_smoothing,
                   calibration=cls.options(config.task_options).calibration)

    @classmethod
    def from_spec(cls, spec: dict) -> ClassificationTask:
        """Models saved before calibration existed have no temperature: 1, i.e. none."""
        return cls(spec["class_names"], spec.get("label_kind", "binary"),
                   calibration=spec.get("calibration_method", "temperature"), temperature=spec.get("temperature", 1.0))

    @staticmethod
    def load_targets(data, indices: np.ndarray, size: int) -> np.ndarray:
        return data.targets()[np.asarray(indices, dtype=np.int64)]

    @classmethod
    def describe(cls, data, parts: dict[str, np.ndarray]) -> dict:
        t = data.targets()

        def per_class(idx):
            counts = np.bincount(t[idx], minlength=data.num_classes) if t.ndim == 1 else t[idx].sum(0)
            return {n: int(c) for n, c in zip(data.class_names, counts)}

        return {"label_kind": data.label_kind, "per_class": {k: per_class(idx) for k, idx in parts.items()}}

    @classmethod
    def check_split(cls, data, split) -> None:
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

    def examples(self, data, test_idx: np.ndarray, targets: Sequence, limit: int = 8, per_class: int = 2) -> np.ndarray:
        """Up to ``per_class`` test images of each class (``limit`` in all), the first ones in test-split order."""
        t = np.asarray(targets)
        chosen: list[int] = []
        for c in range(len(self.class_names)):
            members = np.flatnonzero(t == c if t.ndim == 1 else t[:, c] == 1)
            chosen += [int(i) for i in members[:per_class] if i not in chosen][: max(0, limit - len(chosen))]
        return np.asarray(chosen, dtype=np.int64)

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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def head(self, backbone: Backbone, groups, taps) -> torch.nn.Module:
        return backbone.head  # timm's pooling + the new classifier (reset to num_classes in create_backbone)

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

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> ProbabilityWriter:
        return ProbabilityWriter(self, saved, out_dir, heatmaps)

    @property
    def calibrates(self) -> bool:
        return self.calibration == "temperature"

    def calibrate(self, outputs, targets) -> dict:
        """Temperature scaling on the validation split's logits (see :mod:`medtransfer.training.calibration`)."""
        from medtransfer.training.calibration import fit_temperature

        self.temperature = fit_temperature(np.asarray(outputs), np.asarray(targets), self.label_kind)
        return {"method": "temperature scaling", "fitted_on": "validation", "temperature": self.temperature}

    def calibration_check(self, outputs, targets):
        from medtransfer.training.calibration import temperature_check

        return temperature_check(np.asarray(outputs), np.asarray(targets), self.temperature, self.label_kind)

    @property
    def metric(self) -> Metric:
        return auc_metric(self.label_kind)

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        return {"targets": np.asarray(targets), "probs": np.asarray(predictions)}

    def score(self, predictions, targets) -> float:
        return auc_score(np.asarray(predictions), np.asarray(targets), self.label_kind)

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        return bootstrap_metrics(predictions, targets, self.label_kind, seed=seed)

    def config(self) -> dict:
        return {"task": self.name, "class_names": self.class_names, "label_kind": self.label_kind,
                "calibration_method": self.calibration, "temperature": self.temperature}
