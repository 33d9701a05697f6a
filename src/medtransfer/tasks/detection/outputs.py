"""What detection writes and shows: ``boxes.csv`` for new images, the run folder's test boxes, and the report's
FROC curves and detected boxes on test images."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch

from medtransfer.errors import ConfigError
from medtransfer.metrics.detection import froc_points
from medtransfer.output_files import CsvTable
from medtransfer.plots import plot_boxes, plot_froc
from medtransfer.tasks.detection.network import DetectorOutput
from medtransfer.tasks.detection.options import DetectionOptions
from medtransfer.tasks.report import ReportSection
from medtransfer.tasks.writer import PredictionWriter, TaskWriter


class DetectionReport(ReportSection):
    head = "feature pyramid and detector"

    def describe_task(self, card: dict) -> str:
        return "object detection (boxes of each class)"

    def metrics_note(self, facts) -> str:
        hit = (facts.config.get("task_options") or {}).get("hit", "iou")
        rule = "its centre lies inside a true box of its class" if hit == "centre" else "its IoU with a true box of its class is at least 0.5"
        return ("mAP@0.5 is COCO's average precision at IoU 0.5 (101-point interpolation), averaged over classes; "
                "mAP@[.5:.95] averages it over IoU 0.50, 0.55, … 0.95. FROC: the sensitivity over all true boxes "
                "against the false positives per image, a detection being a hit when " + rule +
                "; CPM is the mean sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per image. "
                "Intervals: bootstrap over test images.")

    def setup_items(self, config: dict) -> list[tuple[str, str]]:
        o = {**DetectionOptions().__dict__, **(config.get("task_options") or {})}
        return [("detector", f"torchvision {o['detector']} on a {o['fpn_channels']}-channel feature pyramid of the "
                             f"backbone's stride-8/16/32 maps")]

    def figures(self, facts, out_dir) -> list:
        """FROC curves of the recommended strategy and its reference, from the stored test detections."""
        fraction, curves = facts.fractions[0], []
        for strategy in facts.pair():
            cell = facts.runs(strategy, fraction) if strategy else {}
            if cell:
                _samples, cases = cell[min(cell)]
                curves.append((strategy, *froc_points(cases)))
        return [plot_froc(curves, fraction, out_dir, recommended=facts.summary.recommended)]

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        return [("boxes", "Detected boxes on test images", "predicted boxes")]

    def model_figures(self, facts, models, examples, out_dir, *, models_note: str) -> list:
        images = list(examples["images"])
        predictions = []
        for strategy, saved in models if images else []:
            with torch.no_grad():
                found = saved.task.scorer.predict(saved.net(torch.as_tensor(np.stack(images))))
            predictions.append((strategy, found))
        return [plot_boxes(images, list(examples["targets"]), predictions, self.class_names, out_dir,
                           recommended=facts.summary.recommended, models_note=models_note)]


class BoxWriter(PredictionWriter):
    """``boxes.csv``: one row per detected box, in pixels of the input image as read (the boxes found at the input
    size scaled back by the image's own width and height), with its class and score, best first per image; an image
    with no detection is listed once with empty box columns. Every detection the model keeps (score ≥ its threshold,
    0.01) is written: filter by ``score`` for an operating point."""

    def __init__(self, scorer, class_names: list[str], saved, out_dir):
        from pathlib import Path


        self.scorer, self.class_names, self.size = scorer, class_names, int(saved.spec["input_size"])
        self.table = CsvTable(Path(out_dir) / "boxes.csv",
                              ["path", "height", "width", "x1", "y1", "x2", "y2", "label", "score"])

    def add(self, images: list, outputs: DetectorOutput) -> None:
        for im, found in zip(images, self.scorer.predict(outputs)):
            h, w = im.size
            scale = np.array([w, h, w, h], dtype=np.float64) / self.size
            if not len(found["boxes"]):
                self.table.add([im.path, h, w, "", "", "", "", "", ""])
            for box, label, score in zip(found["boxes"] * scale, found["labels"], found["scores"]):
                self.table.add([im.path, h, w, *(f"{v:.1f}" for v in box), self.class_names[int(label)],
                                f"{score:.4f}"])

    def close(self) -> list:
        return [self.table.close()]


class BoxTables(TaskWriter):
    """Test predictions as one row per predicted box; ``predict`` writes ``boxes.csv`` (:class:`BoxWriter`)."""

    uses = "finding and boxing the objects of the classes above"
    outputs = "boxes with detection scores (ranks, not risks)"
    export_refusal = ("ONNX export of a detection model is not available: torchvision's proposal and box "
                      "post-processing (NMS per image, ragged outputs) does not trace into one graph here; use "
                      "'medtransfer predict' with the model folder")

    def predictions_csv(self, indices: np.ndarray, predictions, targets, *, uncalibrated=None) -> str:
        """One row per predicted box: the test sample, the box (pixels of the image resized to the input size),
        its class and its score."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["sample", "x1", "y1", "x2", "y2", "label", "score"])
        for i, p in zip(indices, predictions):
            for box, label, score in zip(p["boxes"], p["labels"], p["scores"]):
                w.writerow([int(i), *(f"{v:.1f}" for v in box), self.class_names[int(label)], f"{score:.4f}"])
        return buf.getvalue()

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> BoxWriter:
        if heatmaps:
            raise ConfigError("--heatmaps is for classification models; a detection model writes its boxes")
        return BoxWriter(self.scorer, self.class_names, saved, out_dir)
