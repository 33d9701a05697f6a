"""Semantic segmentation: a U-Net whose encoder is the pre-trained backbone, cut into the same layer groups.

The encoder is the backbone's groups up to its deepest feature map (timm's ``feature_info``: reductions 2, 4, 8, 16
and 32); layers after it (EfficientNet's ``conv_head``) are dropped. The outputs of the groups that end at those
reductions feed segmentation-models-pytorch's ``UnetDecoder`` (all five, as skip features) or ``FPNDecoder``
(reductions 4 … 32; it predicts at 1/4 and upsamples, cheaper on a CPU). The strategies cut the *encoder*:
``linear`` freezes the whole encoder, ``tune:K`` trains its top K groups, ``full`` all of them, ``scratch`` starts from
a random encoder. The decoder and the segmentation head always train.

Loss: cross-entropy + soft Dice (smp's ``DiceLoss``), over all classes including background. Validation score: mean
per-image Dice of the foreground classes (at the input size). Test metrics: Dice, IoU and HD95 (pixels) of the masks
at each test image's own size — the class scores resized bilinearly to it, as ``predict`` writes them — with
bootstrap intervals over test images.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup, feature_channels, feature_groups
from medtransfer.data.sources.mask_pairs import MaskedImages
from medtransfer.data.sources.mask_sources import MaskCsvSource, MaskFolderSource
from medtransfer.data.sources.nifti_slices import NiftiVolumeSource
from medtransfer.errors import ConfigError, parameter_error
from medtransfer.metrics.bootstrap import nanmean
from medtransfer.metrics.masks import (
    bootstrap_mean,
    dice_per_image,
    mask_metrics,
)
from medtransfer.tasks.base import Metric, PredictionWriter, ReportSection, Task, TaskOptions
from medtransfer.tasks.registry import register_task

#: The reductions a U-Net reads, shallow to deep.
REDUCTIONS = (2, 4, 8, 16, 32)
DECODER_CHANNELS = (256, 128, 64, 32, 16)  # smp's default for the U-Net
DECODERS = ("unet", "fpn")


def encoder_groups(backbone: Backbone) -> tuple[list[LayerGroup], list[int]]:
    """The backbone's groups cut after its deepest feature map, and the groups whose outputs are the maps at
    :data:`REDUCTIONS` (a U-Net reads them all)."""
    return feature_groups(backbone, REDUCTIONS, purpose="a U-Net")


class DecoderHead(nn.Module):
    """smp's U-Net or FPN decoder + segmentation head on the tapped encoder maps (``/2`` … ``/32``), initialised
    as smp initialises its models."""

    def __init__(self, encoder_channels: list[int], num_classes: int, kind: str = "unet"):
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead, initialization

        # smp's encoders also return the input itself first; the decoders use only its size
        channels = [3, *encoder_channels]
        if kind == "unet":
            from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

            self.decoder = UnetDecoder(encoder_channels=channels, decoder_channels=DECODER_CHANNELS,
                                       n_blocks=len(DECODER_CHANNELS))
            self.segmentation = SegmentationHead(DECODER_CHANNELS[-1], num_classes, kernel_size=3)
        elif kind == "fpn":
            from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder

            self.decoder = FPNDecoder(encoder_channels=channels, encoder_depth=len(encoder_channels))
            self.segmentation = SegmentationHead(self.decoder.out_channels, num_classes, kernel_size=1, upsampling=4)
        else:
            raise ConfigError(f"unknown decoder {kind!r}; choose {' or '.join(DECODERS)}")
        initialization.initialize_decoder(self.decoder)
        initialization.initialize_head(self.segmentation)

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        f = features[0]
        full = f.new_empty((0, 0, 2 * f.shape[-2], 2 * f.shape[-1]))
        return self.segmentation(self.decoder([full, *features]))


def mean_dice(cases: dict, resamples: np.ndarray) -> np.ndarray:
    """The mean per-image Dice on each resample, from the stored per-image Dice."""
    return nanmean(np.asarray(cases["dice"], dtype=np.float64)[resamples].T)


DICE = Metric("dice", "Dice", mean_dice, scale="overlap of predicted and true masks: 0 = none, 1 = perfect",
              others=("iou", "hd95"), headings={"iou": "IoU", "hd95": "HD95 (px)"})


@dataclass(frozen=True)
class SegmentationOptions(TaskOptions):
    decoder: str = "unet"  # smp's U-Net, or FPN (cheaper on a CPU)

    def problems(self) -> list[str]:
        if self.decoder not in DECODERS:
            return [parameter_error("decoder", "the segmentation task options", f"one of {', '.join(DECODERS)}",
                                    self.decoder)]
        return []


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
        from medtransfer.plots import MaskPrediction, OverlayImage, plot_overlays

        images = [OverlayImage(im, m, ref) for im, m, ref in zip(examples["images"], examples["targets"], examples["refs"])]
        predictions = []
        for strategy, saved in models if images else []:
            x = torch.as_tensor(np.stack([im.image for im in images]))
            with torch.no_grad():
                masks = saved.task.predict(saved.net(x)).numpy()
            truth = np.stack([im.mask for im in images])
            predictions.append(MaskPrediction(strategy, masks, saved.task.case_columns(masks, truth)["dice"]))
        return [plot_overlays(images, predictions, self.task.class_names, out_dir,
                              recommended=facts.summary.recommended, models_note=models_note)]


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

    def __init__(self, task: SegmentationTask, out_dir):
        from pathlib import Path

        from medtransfer.output_files import CsvTable, FileNames

        self.task, self.masks = task, Path(out_dir) / "masks"
        self.masks.mkdir(parents=True, exist_ok=True)
        fg = task.class_names[1:]
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
            Image.fromarray(mask * 255 if self.task.num_classes == 2 else mask).save(self.masks / name)
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
        areas = [int((mask == c).sum()) for c in range(1, self.task.num_classes)]
        self.table.add([path, f"masks/{name}", *size, slices, voxel, *areas, *[a / mask.size for a in map(float, areas)]])

    def close(self) -> list:
        return [self.table.close(), *self.written]


@register_task
class SegmentationTask(Task):
    name = "segmentation"
    sources = (MaskCsvSource, NiftiVolumeSource, MaskFolderSource)
    data_type = MaskedImages
    detect_priority = 10  # before classification: images/ + masks/ would also read as two classes
    layouts = ("a CSV with columns image,mask[,split,patient_id], a folder with images/ and masks/ (paired by file "
               "name), or a folder with images/ and labels/ holding NIfTI volumes")
    Options = SegmentationOptions
    Report = SegmentationReport
    test_fraction = 0.1  # 80/10/10, as is usual for segmentation benchmarks

    def __init__(self, class_names: list[str], dice_weight: float = 1.0, decoder: str = "unet"):
        if len(class_names) < 2:
            raise ConfigError(f"segmentation needs at least two classes (background first), got {class_names}")
        self.options(SegmentationOptions(decoder).__dict__)
        self.class_names = list(class_names)
        self.decoder = decoder
        self.dice_weight = dice_weight
        self._dice = None

    @classmethod
    def for_data(cls, data, train_targets, config) -> SegmentationTask:
        if config.input_size % REDUCTIONS[-1]:
            raise ConfigError(parameter_error(
                "input_size", "a segmentation run", f"a multiple of {REDUCTIONS[-1]} (the decoder joins maps at "
                f"1/2 … 1/{REDUCTIONS[-1]} of it), e.g. {max(32, round(config.input_size / 32) * 32)}",
                config.input_size))
        return cls(data.class_names, decoder=cls.options(config.task_options).decoder)

    @classmethod
    def from_spec(cls, spec: dict) -> SegmentationTask:
        return cls(spec["class_names"], decoder=spec.get("decoder", "unet"))

    @staticmethod
    def load_targets(data, indices: np.ndarray, size: int) -> torch.Tensor:
        from medtransfer.data.dataset import load_masks

        return load_masks(data, indices, size)

    @classmethod
    def augment(cls, transform):
        from medtransfer.data.dataset import joint_transform

        return None if transform is None else (lambda image, mask: joint_transform(transform, image, mask))

    def predictions_csv(self, indices: np.ndarray, predictions, targets) -> str:
        """Per test image: the Dice of each foreground class (the predicted masks are not written)."""
        d = dice_per_image(predictions, targets, self.num_classes)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["sample", *[f"dice_{n}" for n in self.class_names[1:]]])
        for i, row in zip(indices, d):
            w.writerow([int(i), *(f"{v:.6f}" for v in row)])
        return buf.getvalue()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def layout(cls, backbone: Backbone) -> tuple[list[LayerGroup], list[int]]:
        return encoder_groups(backbone)

    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int]) -> nn.Module:
        return DecoderHead(feature_channels(groups, taps), self.num_classes, self.decoder)

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: nn.Module) -> nn.Module:
        return nn.ModuleDict({"encoder": nn.ModuleList([g.module for g in groups]), "decoder": head})

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self._dice is None:
            from segmentation_models_pytorch.losses import DiceLoss

            self._dice = DiceLoss(mode="multiclass", from_logits=True)
        targets = targets.long()
        return F.cross_entropy(outputs, targets) + self.dice_weight * self._dice(outputs, targets)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The predicted class of every pixel (``uint8`` ``N×H×W``): what the metrics and the figures read."""
        return outputs.argmax(1).to(torch.uint8).cpu()

    def own_size_targets(self, data, indices: np.ndarray) -> list[np.ndarray]:
        """Each image's true mask at the image's own size: the test metrics (Dice, IoU, HD95) score there."""
        return [np.asarray(data.samples[int(i)].load_mask(), dtype=np.uint8) for i in indices]

    def predict_at(self, outputs: torch.Tensor, sizes) -> list[np.ndarray]:
        """Each image's predicted mask at its own size (see :func:`mask_at`)."""
        return [mask_at(out, size) for out, size in zip(outputs, sizes)]

    def gather(self, batches: list):
        if batches and isinstance(batches[0], list):  # masks at the images' own sizes
            return [m for batch in batches for m in batch]
        return super().gather(batches)

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> MaskWriter:
        if heatmaps:
            raise ConfigError("--heatmaps is for classification models; a segmentation model writes its masks")
        return MaskWriter(self, out_dir)

    def delivered_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Per-pixel class probabilities (softmax), ``B×C×S×S``: the exported graph's output."""
        return torch.softmax(outputs.float(), dim=1)

    @property
    def metric(self) -> Metric:
        return DICE

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        """Per-image foreground Dice (mean over foreground classes), the unit of the study's paired comparisons."""
        return {"dice": dice_per_image(predictions, targets, self.num_classes).mean(1)}

    def legacy_case_columns(self, targets: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"dice": np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)[:, 0]}

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        m = mask_metrics(predictions, targets, self.num_classes, class_names=self.class_names)
        out = {name: bootstrap_mean(m["per_image"][name], seed=seed) for name in ("dice", "iou", "hd95")}
        if self.num_classes > 2:
            for j, cls in enumerate(self.class_names[1:]):
                out[f"dice_{cls}"] = bootstrap_mean(m["per_image"]["dice"][:, j], seed=seed)
        return out

    def examples(self, data, test_idx, targets, limit: int = 5):
        return super().examples(data, test_idx, targets, limit=limit)

    def config(self) -> dict:
        return {"task": self.name, "class_names": self.class_names, "decoder": self.decoder}
