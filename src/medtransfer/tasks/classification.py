"""Image classification: binary, multi-class or multi-label, with a new linear classifier on the pooled features."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch
import torch.nn.functional as F

from medtransfer.backbones import Backbone
from medtransfer.metrics import auc_score, bootstrap_metrics
from medtransfer.tasks.base import Task


def balanced_class_weights(targets: np.ndarray, num_classes: int, label_kind: str) -> np.ndarray:
    """Weights inversely proportional to class frequency (per-label positive weights for multi-label), mean 1."""
    targets = np.asarray(targets)
    if label_kind == "multilabel":
        pos = targets.sum(0).astype(np.float64)
        return np.where(pos > 0, (len(targets) - pos) / np.maximum(pos, 1), 1.0)
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(targets) / (num_classes * np.maximum(counts, 1)), 0.0)
    return w / w[counts > 0].mean()


class ClassificationTask(Task):
    name = "classification"
    selection_metric = "auc"

    def __init__(self, class_names: list[str], label_kind: str, class_weights: np.ndarray | None = None,
                 label_smoothing: float = 0.0):
        self.class_names = list(class_names)
        self.label_kind = label_kind
        self.label_smoothing = label_smoothing
        self._weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)

    @classmethod
    def for_data(cls, data, train_targets, config) -> ClassificationTask:
        train_config = config.train
        weights = (balanced_class_weights(np.asarray(train_targets), data.num_classes, data.label_kind)
                   if train_config.class_weighting else None)
        return cls(data.class_names, data.label_kind, weights, label_smoothing=train_config.label_smoothing)

    @classmethod
    def from_spec(cls, spec: dict) -> ClassificationTask:
        return cls(spec["class_names"], spec["label_kind"])

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

    def predictions_csv(self, indices: np.ndarray, targets: np.ndarray, probs: np.ndarray) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        t = targets.reshape(len(targets), -1)
        w.writerow(["sample", *[f"target_{i}" for i in range(t.shape[1])], *[f"p_{n}" for n in self.class_names]])
        for i, tt, p in zip(indices, t, probs):
            w.writerow([int(i), *map(int, tt), *(f"{v:.6f}" for v in p)])
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

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs) if self.label_kind == "multilabel" else torch.softmax(outputs, dim=1)

    def score(self, probs: np.ndarray, targets: np.ndarray) -> float:
        return auc_score(probs, targets, self.label_kind)

    def evaluate(self, probs: np.ndarray, targets: np.ndarray, *, seed: int = 0) -> dict[str, dict[str, float]]:
        return bootstrap_metrics(probs, targets, self.label_kind, seed=seed)

    def config(self) -> dict:
        return {"task": self.name, "class_names": self.class_names, "label_kind": self.label_kind}
