"""Detection's scorer: the detector's own losses, its detections as predictions, and mAP@0.5 as the study metric with
COCO mAP, AP@0.5 per class and FROC sensitivities as the other test metrics, all over resampled test images."""

from __future__ import annotations

import numpy as np
import torch

from medtransfer.metrics.bootstrap import percentile_interval, resample_cases
from medtransfer.metrics.detection import (
    FP_RATES,
    IOU_THRESHOLDS,
    average_precision,
    detection_cases,
    froc_sensitivities,
    mean_average_precision,
)
from medtransfer.tasks.detection.network import DetectorOutput
from medtransfer.tasks.metric import Metric
from medtransfer.tasks.scorer import Scorer

N_RESAMPLES = 1000


def map50(cases: dict, resamples: np.ndarray) -> np.ndarray:
    return mean_average_precision(cases, resamples, thresholds=(0,))


MAP50 = Metric("map50", "mAP@0.5", map50, scale="mean over classes of the average precision at IoU 0.5: 1 = perfect",
               others=("map", "cpm", "sens@1"),
               headings={"map": "mAP@[.5:.95]", "cpm": "CPM", "sens@1": "sensitivity at 1 FP/image"})


class DetectionScorer(Scorer):
    metric = MAP50

    def __init__(self, class_names: list[str], hit: str = "iou"):
        self.class_names, self.hit = class_names, hit

    def loss(self, outputs: DetectorOutput, targets: list[dict]) -> torch.Tensor:
        if not outputs.detector.training:
            return torch.tensor(float("nan"))
        return sum(outputs.detector.losses(outputs.features, targets).values())

    def predict(self, outputs: DetectorOutput) -> list[dict[str, np.ndarray]]:
        """Per image: ``boxes`` (K×4, pixels of the resized image), ``scores`` and ``labels`` (0-based), best first."""
        return [{k: v.detach().float().cpu().numpy() if k != "labels" else v.cpu().numpy() for k, v in d.items()}
                for d in outputs.detector.detect(outputs.features)]

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        """Per test image: its detections' scores, labels and hits at every IoU threshold (and by the FROC rule),
        and its true boxes per class (:func:`~medtransfer.metrics.detection.detection_cases`)."""
        return detection_cases(predictions, [np.asarray(t) for t in targets], len(self.class_names), hit=self.hit)

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        cases = self.case_columns(predictions, targets)
        idx = resample_cases(len(targets), N_RESAMPLES, seed)
        out = {"map50": percentile_interval(map50(cases, idx)),
               "map": percentile_interval(mean_average_precision(cases, idx, thresholds=range(len(IOU_THRESHOLDS))))}
        for c, name in enumerate(self.class_names):
            out[f"ap50_{name}"] = percentile_interval(average_precision(cases, idx, c))
        sens = froc_sensitivities(cases, idx)
        for j, rate in enumerate(FP_RATES):
            out[f"sens@{rate:g}"] = percentile_interval(sens[:, j])
        out["cpm"] = percentile_interval(sens.mean(1))
        reference = torchmetrics_map(predictions, targets)
        if reference is not None:  # the point values as torchmetrics computes them (equal to row 0; tested)
            out["map50"]["value"], out["map"]["value"] = reference
        return out


def torchmetrics_map(predictions, targets) -> tuple[float, float] | None:
    """(mAP@0.5, mAP@[.5:.95]) by torchmetrics' ``MeanAveragePrecision`` with the faster_coco_eval backend (COCO's
    evaluation in C++, maintained; pycocotools gives the same numbers, slower), or None when it is not installed."""
    try:
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError:  # pragma: no cover
        return None
    m = MeanAveragePrecision(iou_type="bbox", backend="faster_coco_eval")
    m.update([{"boxes": torch.as_tensor(p["boxes"]).float().reshape(-1, 4), "scores": torch.as_tensor(p["scores"]).float(),
               "labels": torch.as_tensor(p["labels"]).long()} for p in predictions],
             [{"boxes": torch.as_tensor(t)[:, :4].float(), "labels": torch.as_tensor(t)[:, 4].long()} for t in targets])
    r = m.compute()
    values = float(r["map_50"]), float(r["map"])
    return None if min(values) < 0 else values  # -1: no true box at all

