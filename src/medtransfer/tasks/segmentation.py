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
from medtransfer.data.dataset import joint_transform, load_masks
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
from medtransfer.tasks.base import Task, TaskParts
from medtransfer.tasks.head import HeadFactory
from medtransfer.tasks.inputs import TaskInputs, TaskOptions
from medtransfer.tasks.metric import Metric
from medtransfer.tasks.registry import register_task
from medtransfer.tasks.scorer import Scorer
from medtransfer.tasks.segmentation_outputs import MaskWriter, SegmentationReport, mask_at
from medtransfer.tasks.targets import TargetCodec
from medtransfer.tasks.writer import TaskWriter

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


class MaskTargets(TargetCodec):
    """Masks at the input size for training and validation; at each image's own size for the test metrics."""

    def load_targets(self, data, indices: np.ndarray, size: int) -> torch.Tensor:
        return load_masks(data, indices, size)

    def augment(self, transform):
        return None if transform is None else (lambda image, mask: joint_transform(transform, image, mask))

    def own_size_targets(self, data, indices: np.ndarray) -> list[np.ndarray]:
        """Each image's true mask at the image's own size: the test metrics (Dice, IoU, HD95) score there."""
        return [np.asarray(data.samples[int(i)].load_mask(), dtype=np.uint8) for i in indices]

    def gather(self, batches: list):
        if batches and isinstance(batches[0], list):  # masks at the images' own sizes
            return [m for batch in batches for m in batch]
        return super().gather(batches)


class UnetHead(HeadFactory):
    """The U-Net's (or FPN's) decoder on the encoder's maps at :data:`REDUCTIONS`."""

    def __init__(self, num_classes: int, decoder: str = "unet"):
        self.num_classes, self.decoder = num_classes, decoder

    def layout(self, backbone: Backbone) -> tuple[list[LayerGroup], list[int]]:
        return encoder_groups(backbone)

    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int]) -> nn.Module:
        return DecoderHead(feature_channels(groups, taps), self.num_classes, self.decoder)

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: nn.Module) -> nn.Module:
        return nn.ModuleDict({"encoder": nn.ModuleList([g.module for g in groups]), "decoder": head})


class SegmentationScorer(Scorer):
    """Cross-entropy + Dice loss; the predicted class per pixel; Dice, IoU and HD95."""

    metric = DICE

    def __init__(self, class_names: list[str], dice_weight: float = 1.0):
        self.class_names, self.num_classes, self.dice_weight = class_names, len(class_names), dice_weight
        self._dice = None

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self._dice is None:
            from segmentation_models_pytorch.losses import DiceLoss

            self._dice = DiceLoss(mode="multiclass", from_logits=True)
        targets = targets.long()
        return F.cross_entropy(outputs, targets) + self.dice_weight * self._dice(outputs, targets)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The predicted class of every pixel (``uint8`` ``N×H×W``): what the metrics and the figures read."""
        return outputs.argmax(1).to(torch.uint8).cpu()

    def predict_at(self, outputs: torch.Tensor, sizes) -> list[np.ndarray]:
        """Each image's predicted mask at its own size (see :func:`mask_at`)."""
        return [mask_at(out, size) for out, size in zip(outputs, sizes)]

    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        """Per-image foreground Dice (mean over foreground classes), the unit of the study's paired comparisons."""
        return {"dice": dice_per_image(predictions, targets, self.num_classes).mean(1)}

    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        m = mask_metrics(predictions, targets, self.num_classes, class_names=self.class_names)
        out = {name: bootstrap_mean(m["per_image"][name], seed=seed) for name in ("dice", "iou", "hd95")}
        if self.num_classes > 2:
            for j, cls in enumerate(self.class_names[1:]):
                out[f"dice_{cls}"] = bootstrap_mean(m["per_image"]["dice"][:, j], seed=seed)
        return out


class MaskTables(TaskWriter):
    """Test predictions as each image's Dice per class; ``predict`` writes masks (:class:`MaskWriter`)."""

    uses = "outlining the classes above"
    outputs = "a class per pixel"
    volumes = True

    def predictions_csv(self, indices: np.ndarray, predictions, targets, *, uncalibrated=None) -> str:
        """Per test image: the Dice of each foreground class (the predicted masks are not written)."""
        d = dice_per_image(predictions, targets, len(self.class_names))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["sample", *[f"dice_{n}" for n in self.class_names[1:]]])
        for i, row in zip(indices, d):
            w.writerow([int(i), *(f"{v:.6f}" for v in row)])
        return buf.getvalue()

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> MaskWriter:
        if heatmaps:
            raise ConfigError("--heatmaps is for classification models; a segmentation model writes its masks")
        return MaskWriter(self.class_names, out_dir)

    def delivered_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Per-pixel class probabilities (softmax), ``B×C×S×S``: the exported graph's output."""
        return torch.softmax(outputs.float(), dim=1)

    def exported_output(self, size: int) -> dict:
        return {"shape": ["batch", len(self.class_names), "height", "width"], "meaning": "per-pixel class "
                "probabilities at the image's own size (the network's scores resized bilinearly to it, then softmax); "
                "the mask is their argmax", "classes": self.class_names}


def segmentation_parts(spec: dict) -> TaskParts:
    names, decoder = list(spec["class_names"]), spec.get("decoder", "unet")
    if len(names) < 2:
        raise ConfigError(f"segmentation needs at least two classes (background first), got {names}")
    SEGMENTATION.inputs.options(SegmentationOptions(decoder).__dict__)
    scorer = SegmentationScorer(names)
    return TaskParts(head=UnetHead(len(names), decoder), scorer=scorer, writer=MaskTables(scorer, names),
                     report=SegmentationReport("segmentation", DICE, names),
                     spec={"class_names": names, "decoder": decoder})


def segmentation_for_data(data, train_targets, config) -> TaskParts:
    if config.input_size % REDUCTIONS[-1]:
        raise ConfigError(parameter_error(
            "input_size", "a segmentation run", f"a multiple of {REDUCTIONS[-1]} (the decoder joins maps at "
            f"1/2 … 1/{REDUCTIONS[-1]} of it), e.g. {max(32, round(config.input_size / 32) * 32)}",
            config.input_size))
    return segmentation_parts({"class_names": data.class_names,
                               "decoder": SEGMENTATION.inputs.options(config.task_options).decoder})


SEGMENTATION = register_task(Task(
    "segmentation",
    inputs=TaskInputs(
        sources=(MaskCsvSource, NiftiVolumeSource, MaskFolderSource), data_type=MaskedImages,
        detect_priority=10,  # before classification: images/ + masks/ would also read as two classes
        layouts=("a CSV with columns image,mask[,split,patient_id], a folder with images/ and masks/ (paired by "
                 "file name), or a folder with images/ and labels/ holding NIfTI volumes"),
        options_type=SegmentationOptions,
        test_fraction=0.1,  # 80/10/10, as is usual for segmentation benchmarks
        examples_limit=5),
    codec=MaskTargets(), build=segmentation_for_data, rebuild=segmentation_parts, head_layout=UnetHead(0)))
