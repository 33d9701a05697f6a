"""What segmentation writes and shows: a mask per new image (and a label volume per NIfTI volume) with their
areas, and the report's predicted masks on test images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medtransfer.output_files import CsvTable, FileNames
from medtransfer.plots import MaskPrediction, OverlayImage, plot_overlays
from medtransfer.tasks.report import ReportSection
from medtransfer.tasks.writer import PredictionWriter


def mask_at(scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The class map (``uint8`` ``h×w``) of one image's class scores (``C×S×S``) resized bilinearly to ``size``:
    what a delivered model writes and what the test metrics score."""
    scores = F.interpolate(scores[None].float(), size=tuple(size), mode="bilinear", align_corners=False)[0]
    return scores.argmax(0).to(torch.uint8).cpu().numpy()


class MaskWriter(PredictionWriter):
    """One mask per image in ``masks/``, at the image's own size (the network's class scores resized bilinearly to
    it, then the most probable class per pixel): PNG of {0, 255} for one foreground class, else of class indices; a
    NIfTI volume gets one label volume (``.nii.gz``, class indices, the input's shape and affine) assembled from its
    slices. ``areas.csv``: per image or volume the path as given, the mask file, its size, and each foreground
    class's area in pixels (voxels for a volume, with the voxel size in mm³) and as a share of the image."""

    def __init__(self, class_names: list[str], out_dir):
        from pathlib import Path


        self.num_classes, self.masks = len(class_names), Path(out_dir) / "masks"
        self.masks.mkdir(parents=True, exist_ok=True)
        fg = class_names[1:]
        self.table = CsvTable(Path(out_dir) / "areas.csv", ["path", "mask", "height", "width", "slices", "voxel_mm3",
                                                            *[f"area_px_{n}" for n in fg],
                                                            *[f"area_fraction_{n}" for n in fg]])
        self.names = FileNames()
        self.written: list = []
        self._volumes: dict[str, list] = {}  # path → [label volume, slices still to come]

    def add(self, images: list, outputs: torch.Tensor) -> None:
        from PIL import Image

        for im, out in zip(images, outputs):
            h, w = im.size
            mask = mask_at(out, (h, w))
            if im.volume is not None:
                self._add_slice(im, mask)
                continue
            name = self.names.name(im.path, ".png")
            Image.fromarray(mask * 255 if self.num_classes == 2 else mask).save(self.masks / name)
            self._row(im.path, name, mask, (h, w), 1, "")

    def _add_slice(self, im, mask: np.ndarray) -> None:
        v = im.volume
        entry = self._volumes.setdefault(v.path, [np.zeros(v.shape, np.uint8), v.shape[v.axis]])
        where = [slice(None)] * 3
        where[v.axis] = im.index
        entry[0][tuple(where)] = mask
        entry[1] -= 1
        if entry[1] == 0:  # the volume's last slice: write it
            import nibabel as nib

            labels = self._volumes.pop(v.path)[0]
            name = self.names.name(v.path, ".nii.gz")
            image = nib.Nifti1Image(labels, v.affine)
            image.header.set_zooms(v.zooms)
            nib.save(image, str(self.masks / name))
            plane = [n for k, n in enumerate(v.shape) if k != v.axis]
            self._row(v.path, name, labels, tuple(plane), v.shape[v.axis], float(np.prod(v.zooms)))

    def _row(self, path: str, name: str, mask: np.ndarray, size: tuple[int, int], slices: int, voxel) -> None:
        self.written.append(self.masks / name)
        areas = [int((mask == c).sum()) for c in range(1, self.num_classes)]
        self.table.add([path, f"masks/{name}", *size, slices, voxel, *areas, *[a / mask.size for a in map(float, areas)]])

    def close(self) -> list:
        return [self.table.close(), *self.written]


class SegmentationReport(ReportSection):
    head = "decoder"

    def describe_task(self, card: dict) -> str:
        return "segmentation (one class per pixel, the first class being the background)"

    def split_method(self) -> str:
        return "grouped by patient (or volume) where known"

    def metrics_note(self, facts) -> str:
        return ("Dice and IoU compare each test image's predicted mask with the true one, per foreground class, and "
                "are averaged over images (1 when both masks are empty); HD95 is the 95th percentile of the distances "
                f"between the two masks' borders, in pixels, over the images where neither mask is empty. The test masks "
                "are scored at each image's own size (the network's class scores, at the "
                f"{facts.config.get('input_size')} px input size, resized to it), as the delivered model writes them; "
                "validation, which picks the checkpoint, at the input size.")

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        return [("overlay", "Predicted masks on test images", "predicted masks")]

    def model_figures(self, facts, models, examples, out_dir, *, models_note: str) -> list:
        images = [OverlayImage(im, m, ref) for im, m, ref in zip(examples["images"], examples["targets"], examples["refs"])]
        predictions = []
        for strategy, saved in models if images else []:
            x = torch.as_tensor(np.stack([im.image for im in images]))
            with torch.no_grad():
                masks = saved.task.scorer.predict(saved.net(x)).numpy()
            truth = np.stack([im.mask for im in images])
            predictions.append(MaskPrediction(strategy, masks, saved.task.scorer.case_columns(masks, truth)["dice"]))
        return [plot_overlays(images, predictions, self.class_names, out_dir,
                              recommended=facts.summary.recommended, models_note=models_note)]
