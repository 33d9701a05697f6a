"""What classification adds to a study's report (ROC curves, Grad-CAM heat maps) and what ``predict`` writes for
new images (probabilities per class, optionally heat maps)."""

from __future__ import annotations

import numpy as np
import torch

from medtransfer.output_files import CsvTable, FileNames
from medtransfer.plots import RocRuns, SaliencyImage, gradcam_maps, plot_roc, plot_saliency
from medtransfer.tasks.report import ReportSection
from medtransfer.tasks.writer import PredictionWriter


class ClassificationReport(ReportSection):
    head = "classifier"

    def __init__(self, name: str, metric, class_names, label_kind: str):
        super().__init__(name, metric, class_names)
        self.label_kind = label_kind

    def describe_task(self, card: dict) -> str:
        kind = card.get("label_kind")
        return {"binary": "binary classification", "multiclass": "multi-class classification",
                "multilabel": "multi-label classification"}.get(kind, kind or "classification")

    def split_method(self) -> str:
        return "stratified and grouped by patient where known"

    def metrics_note(self, facts) -> str:
        classes = self.class_names
        if self.label_kind == "binary" and len(classes) == 2:
            return (f"each image is assigned its most probable class (threshold 0.5); sensitivity and specificity "
                    f"treat '{classes[1]}' as the positive class.")
        if self.label_kind == "multilabel":
            return "a label counts as present at probability 0.5 or more; sensitivity and specificity are averaged over labels."
        return "each image is assigned its most probable class; sensitivity and specificity are averaged over classes."

    def setup_items(self, config: dict) -> list[tuple[str, str]]:
        return [("class weighting", "balanced" if config.get("train", {}).get("class_weighting") else "none")]

    def figures(self, facts, out_dir) -> list:
        """ROC of the recommended strategy and its reference from the stored test predictions."""
        fraction, runs = facts.fractions[0], []
        for strategy in facts.pair():
            cell = facts.runs(strategy, fraction) if strategy else {}
            if cell:
                preds = list(cell.values())
                if all(np.array_equal(p[0], preds[0][0]) for p in preds):
                    runs.append(RocRuns(strategy, preds[0][1]["targets"], [p[1]["probs"] for p in preds]))
        return [plot_roc(runs, self.label_kind, self.class_names, fraction, facts.summary.recommended,
                         out_dir)]

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        return [("saliency", "Where the models look: Grad-CAM on test images", "heat maps")]

    def model_figures(self, facts, models, examples, out_dir, *, models_note: str) -> list:
        images = [SaliencyImage(np.broadcast_to(im, (3, *im.shape[1:])).copy(), int(t), self.class_names[int(t)], ref)
                  for im, t, ref in zip(examples["images"], examples["targets"], examples["refs"])]
        return [plot_saliency(images, [(s, saved.net) for s, saved in models],
                              {s: saved.task.scorer.predict for s, saved in models}, out_dir, fraction_note=models_note)]


class ProbabilityWriter(PredictionWriter):
    """``predictions.csv``: per image the path as given, each class's probability (``p_<class>``, calibrated as the
    model is) and the predicted class (multi-label: the labels at 0.5 or more, joined by ';'); with ``heatmaps``, a
    Grad-CAM overlay of the predicted class per image in ``heatmaps/`` (:mod:`medtransfer.plots.saliency`)."""

    def __init__(self, scorer, class_names: list[str], saved, out_dir, heatmaps: bool):
        from pathlib import Path


        self.scorer, self.class_names, self.saved, self.out_dir = scorer, class_names, saved, Path(out_dir)
        self.table = CsvTable(self.out_dir / "predictions.csv",
                              ["path", *[f"p_{n}" for n in class_names], "predicted"])
        self.heatmaps = self.out_dir / "heatmaps" if heatmaps else None
        self.names = FileNames()
        self.written: list = []

    def add(self, images: list, outputs: torch.Tensor) -> None:
        probs = self.scorer.predict(outputs).numpy()
        names = self.class_names
        for im, p in zip(images, probs):
            predicted = (";".join(n for n, v in zip(names, p) if v >= 0.5) if self.scorer.label_kind == "multilabel"
                         else names[int(p.argmax())])
            self.table.add([im.path, *map(float, p), predicted])
        if self.heatmaps is not None:
            self._draw_heatmaps(images, probs)

    def _draw_heatmaps(self, images: list, probs: np.ndarray) -> None:
        from PIL import Image
        from pytorch_grad_cam.utils.image import show_cam_on_image


        self.heatmaps.mkdir(parents=True, exist_ok=True)
        shown = [SaliencyImage(im.tensor.expand(3, -1, -1).numpy(), int(p.argmax()),
                               self.class_names[int(p.argmax())], im.path) for im, p in zip(images, probs)]
        maps, _p, _shape = gradcam_maps(self.saved.net, shown, self.scorer.predict)
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
