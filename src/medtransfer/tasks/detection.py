"""Object detection: torchvision's detectors on the pre-trained backbone's feature pyramid, scored by mAP and FROC.

The network is the backbone's groups up to its stride-32 map (as for segmentation; EfficientNet's ``conv_head`` is
dropped). The outputs of the groups that end at strides 8, 16 and 32 feed torchvision's ``FeaturePyramidNetwork``,
and the pyramid feeds one of torchvision's detectors, without their own backbone and image transform (the images are
already resized to ``input_size``; the network's prefix normalises them):

* ``faster_rcnn`` (default): region proposal network + RoI heads, two stages; pyramid levels /8 … /64.
* ``retinanet``: one stage, focal loss; levels /8 … /128.
* ``fcos``: one stage, anchor-free; levels /8 … /128.

The strategies cut the backbone exactly as for the other tasks (``linear``: backbone frozen, the pyramid and the
detector train; ``tune:K``; ``full``; ``scratch``). BatchNorm: frozen groups run in eval mode, as always; in trainable
groups of a pre-trained backbone BatchNorm statistics stay frozen too (eval mode; its scale and shift still train),
as torchvision does for pre-trained detection backbones, since batches of a few large images estimate them badly.
``scratch`` has no statistics worth keeping, so its BatchNorm layers learn them from the batches as usual.

Targets are one ``M×5`` float tensor per image (``x1 y1 x2 y2 label`` in pixels of the resized image), ragged
across images; flips, scaling and colour jitter move the boxes with the image (torchvision v2 ``BoundingBoxes``),
boxes pushed out of the image are dropped. Metrics (:mod:`medtransfer.metrics.detection`): the study metric is
mAP@0.5; test metrics add COCO mAP@[.5:.95], AP@0.5 per class, and FROC sensitivities at 1/8 … 8 false positives
per image with their mean (CPM), all with bootstrap intervals over test images. Validation loss is not computed:
torchvision's detectors give their losses in training mode only, so the curves show the validation mAP.
"""

from __future__ import annotations

import csv
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
import numpy as np
import torch
from torch import nn

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup, feature_channels, feature_groups
from medtransfer.data.splits import check_scored_classes
from medtransfer.data.sources.boxes import BOX_SOURCES, BoxedImages, MaskBoxSource
from medtransfer.errors import ConfigError, DataError, MedTransferError, parameter_error
from medtransfer.metrics.bootstrap import percentile_interval, resample_cases
from medtransfer.metrics.detection import (
    FP_RATES,
    IOU_THRESHOLDS,
    average_precision,
    detection_cases,
    froc_sensitivities,
    mean_average_precision,
)
from medtransfer.metrics.froc import HITS
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks.base import Metric, PredictionWriter, ReportSection, Task, TaskOptions
from medtransfer.tasks.registry import register_task

#: the strides of the backbone maps the feature pyramid reads
REDUCTIONS = (8, 16, 32)
DETECTORS = ("faster_rcnn", "retinanet", "fcos")
N_RESAMPLES = 1000


# -- the metric ------------------------------------------------------------------------------------------------------
def map50(cases: dict, resamples: np.ndarray) -> np.ndarray:
    return mean_average_precision(cases, resamples, thresholds=(0,))


MAP50 = Metric("map50", "mAP@0.5", map50, scale="mean over classes of the average precision at IoU 0.5: 1 = perfect",
               others=("map", "cpm", "sens@1"),
               headings={"map": "mAP@[.5:.95]", "cpm": "CPM", "sens@1": "sensitivity at 1 FP/image"})


@dataclass(frozen=True)
class DetectionOptions(TaskOptions):
    detector: str = "faster_rcnn"  # faster_rcnn, retinanet or fcos (torchvision's)
    fpn_channels: int = 128  # channels of the feature pyramid
    hit: str = "iou"  # FROC: a detection finds a true box at IoU >= 0.5 ("iou") or with its centre inside ("centre")

    def problems(self) -> list[str]:
        p = []
        if self.detector not in DETECTORS:
            p.append(parameter_error("detector", "the detection task options", f"one of {', '.join(DETECTORS)}",
                                     self.detector))
        if not 8 <= self.fpn_channels <= 1024 or (self.detector == "fcos" and self.fpn_channels % 32):
            p.append(parameter_error("fpn_channels", "the detection task options", "an integer in [8, 1024] (for fcos "
                                     "a multiple of 32: its head normalises 32 groups of channels)", self.fpn_channels))
        if self.hit not in HITS:
            p.append(parameter_error("hit", "the detection task options", f"one of {', '.join(HITS)}", self.hit))
        return p


# -- the network -----------------------------------------------------------------------------------------------------
class DetectorOutput:
    """What the network returns: the feature pyramid of a batch, and the detector that reads it. The task's loss
    and predictions run the detector's stages on it (torchvision's detectors give losses only in training mode)."""

    def __init__(self, features: OrderedDict, detector: DetectorHead):
        self.features, self.detector = features, detector

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))


class _Channels(nn.Module):
    """A stand-in backbone for torchvision's detector constructors, which read only ``out_channels``."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels


class DetectorHead(nn.Module):
    """Feature pyramid + one of torchvision's detectors (its anchors, heads, losses and post-processing)."""

    def __init__(self, in_channels: list[int], num_classes: int, kind: str = "faster_rcnn", channels: int = 128):
        super().__init__()
        from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        self.kind, self.num_classes = kind, num_classes
        stand_in = _Channels(channels)
        if kind == "faster_rcnn":
            # levels /8, /16, /32 and a max-pooled /64; anchors 16 … 128 px, three aspect ratios
            self.fpn = FeaturePyramidNetwork(in_channels, channels, extra_blocks=LastLevelMaxPool())
            anchors = AnchorGenerator(((16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 4)
            model = FasterRCNN(stand_in, num_classes=num_classes + 1, rpn_anchor_generator=anchors,
                               box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], 7, 1),
                               rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=1000,
                               rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=300,
                               box_batch_size_per_image=128, box_score_thresh=0.01)
            self.rpn, self.roi_heads = model.rpn, model.roi_heads
        elif kind in ("retinanet", "fcos"):
            self.fpn = FeaturePyramidNetwork(in_channels, channels, extra_blocks=LastLevelP6P7(channels, channels))
            if kind == "retinanet":
                sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (16, 32, 64, 128, 256))
                anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
                model = RetinaNet(stand_in, num_classes=num_classes, anchor_generator=anchors, score_thresh=0.01)
            else:
                anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
                model = FCOS(stand_in, num_classes=num_classes, anchor_generator=anchors, score_thresh=0.01)
            self.head, self.anchor_generator = model.head, model.anchor_generator
            # the detector's own loss and post-processing; its modules are registered just above, not twice
            self.__dict__["_one_stage"] = model
        else:
            raise ConfigError(f"unknown detector {kind!r}; choose one of {', '.join(DETECTORS)}")

    def forward(self, maps: tuple[torch.Tensor, ...]) -> DetectorOutput:
        return DetectorOutput(self.fpn(OrderedDict((str(i), m.float()) for i, m in enumerate(maps))), self)

    def _images(self, features: OrderedDict):
        from torchvision.models.detection.image_list import ImageList

        f = next(iter(features.values()))  # stride 8
        size = (f.shape[-2] * REDUCTIONS[0], f.shape[-1] * REDUCTIONS[0])
        return ImageList(f.new_empty((len(f), 0, *size)), [size] * len(f))

    def losses(self, features: OrderedDict, targets: list[dict]) -> dict[str, torch.Tensor]:
        images = self._images(features)
        if self.kind == "faster_rcnn":
            shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]  # 0 is the background
            proposals, rpn_losses = self.rpn(images, features, shifted)
            _, roi_losses = self.roi_heads(features, proposals, images.image_sizes, shifted)
            return {**rpn_losses, **roi_losses}
        maps = list(features.values())
        outputs = self.head(maps)
        anchors = self.anchor_generator(images, maps)
        if self.kind == "retinanet":
            return self._one_stage.compute_loss(targets, outputs, anchors)
        return self._one_stage.compute_loss(targets, outputs, anchors, [m.size(2) * m.size(3) for m in maps])

    @torch.no_grad()
    def detect(self, features: OrderedDict) -> list[dict[str, torch.Tensor]]:
        images = self._images(features)
        if self.kind == "faster_rcnn":
            proposals, _ = self.rpn(images, features)
            found, _ = self.roi_heads(features, proposals, images.image_sizes)
            return [{**d, "labels": d["labels"] - 1} for d in found]
        maps = list(features.values())
        outputs = self.head(maps)
        anchors = self.anchor_generator(images, maps)
        counts = [m.size(2) * m.size(3) for m in maps]
        counts = [c * outputs["cls_logits"].shape[1] // sum(counts) for c in counts]  # × anchors per location
        split_outputs = {k: list(v.split(counts, dim=1)) for k, v in outputs.items()}
        split_anchors = [list(a.split(counts)) for a in anchors]
        return self._one_stage.postprocess_detections(split_outputs, split_anchors, images.image_sizes)


class _FrozenStatistics:
    """Mixed into a BatchNorm layer's class: the layer always normalises with its stored statistics."""

    def train(self, mode: bool = True):
        return super().train(False)


_FROZEN_CLASSES: dict[type, type] = {}


def freeze_statistics(module: nn.Module) -> None:
    """Keep every BatchNorm layer in ``module`` in eval mode, whatever ``train()`` asks (its affine parameters still
    train). The layers keep their state-dict keys."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, _FrozenStatistics):
            cls = type(m)
            if cls not in _FROZEN_CLASSES:
                _FROZEN_CLASSES[cls] = type(f"FrozenStatistics{cls.__name__}", (_FrozenStatistics, cls), {})
            m.__class__ = _FROZEN_CLASSES[cls]
            m.eval()


# -- the report ------------------------------------------------------------------------------------------------------
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
        from medtransfer.metrics.detection import froc_points
        from medtransfer.plots import plot_froc

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
        from medtransfer.plots import plot_boxes

        images = list(examples["images"])
        predictions = []
        for strategy, saved in models if images else []:
            with torch.no_grad():
                found = saved.task.predict(saved.net(torch.as_tensor(np.stack(images))))
            predictions.append((strategy, found))
        return [plot_boxes(images, list(examples["targets"]), predictions, self.task.class_names, out_dir,
                           recommended=facts.summary.recommended, models_note=models_note)]


# -- predictions on new images ---------------------------------------------------------------------------------------
class BoxWriter(PredictionWriter):
    """``boxes.csv``: one row per detected box, in pixels of the input image as read (the boxes found at the input
    size scaled back by the image's own width and height), with its class and score, best first per image; an image
    with no detection is listed once with empty box columns. Every detection the model keeps (score ≥ its threshold,
    0.01) is written: filter by ``score`` for an operating point."""

    def __init__(self, task: DetectionTask, saved, out_dir):
        from pathlib import Path

        from medtransfer.output_files import CsvTable

        self.task, self.size = task, int(saved.spec["input_size"])
        self.table = CsvTable(Path(out_dir) / "boxes.csv",
                              ["path", "height", "width", "x1", "y1", "x2", "y2", "label", "score"])

    def add(self, images: list, outputs: DetectorOutput) -> None:
        for im, found in zip(images, self.task.predict(outputs)):
            h, w = im.size
            scale = np.array([w, h, w, h], dtype=np.float64) / self.size
            if not len(found["boxes"]):
                self.table.add([im.path, h, w, "", "", "", "", "", ""])
            for box, label, score in zip(found["boxes"] * scale, found["labels"], found["scores"]):
                self.table.add([im.path, h, w, *(f"{v:.1f}" for v in box), self.task.class_names[int(label)],
                                f"{score:.4f}"])

    def close(self) -> list:
        return [self.table.close()]


# -- the task --------------------------------------------------------------------------------------------------------
@register_task
class DetectionTask(Task):
    name = "detection"
    sources = (*BOX_SOURCES, MaskBoxSource)
    data_type = BoxedImages
    detect_priority = 30  # before the others: VOC's Annotations/ + JPEGImages/ would also read as two classes
    layouts = ("Pascal VOC (Annotations/*.xml + JPEGImages/), a COCO JSON file, a CSV with columns "
               "image,x1,y1,x2,y2,label[,split,patient_id], or image + mask pairs with --task detection")
    Options = DetectionOptions
    Report = DetectionReport
    export_refusal = ("ONNX export of a detection model is not available: torchvision's proposal and box "
                      "post-processing (NMS per image, ragged outputs) does not trace into one graph here; use "
                      "'medtransfer predict' with the model folder")
    test_fraction = 0.2
    #: the measured defaults of a detection run (docs/benchmarks.md): what a run uses where the user sets nothing.
    #: Flips only: shifts and zooms make new image borders, and annotators often leave objects cut by the border
    #: unlabelled (BCCD: 69 % of the confident unmatched RBC detections touch the border), a convention the network
    #: learns only when the border stays where it is (BCCD test mAP@0.5 0.879 with 'boxes+hflip+vflip', 0.909 without)
    #: 384 px: BCCD's 640×480 images at 0.6× (test mAP@0.5 0.909, 17 min a trial here); smaller images are not
    #: upsampled (:meth:`recipe_for`)
    recipe = {"input_size": 384, "augmentation": "none+hflip+vflip",
              "train": {"epochs": 9, "batch_size": 4, "lr": 3e-4, "warmup_epochs": 1, "patience": None,
                        "ema_decay": 0.99}}

    @classmethod
    def recipe_for(cls, spec: str, **options) -> dict:
        """The recipe, with the input size at most the stored images' median longest side (rounded up to a
        multiple of 32): upsampling adds no detail and costs time quadratically (Kvasir-SEG's 256 px images train at
        256, not 384)."""
        recipe = dict(cls.recipe)
        try:
            sides = [max(s.size) for s in cls.read(spec, **options).samples if s.size]
        except MedTransferError:  # unreadable data: the run's own reading says why
            return recipe
        if sides:
            recipe["input_size"] = min(recipe["input_size"], 32 * math.ceil(float(np.median(sides)) / 32))
        return recipe

    def __init__(self, class_names: list[str], detector: str = "faster_rcnn", fpn_channels: int = 128,
                 hit: str = "iou"):
        if not class_names:
            raise ConfigError("detection needs at least one box class")
        self.options(DetectionOptions(detector, fpn_channels, hit).__dict__)
        self.class_names = list(class_names)
        self.detector, self.fpn_channels, self.hit = detector, fpn_channels, hit

    @classmethod
    def recognises(cls, spec: str) -> bool:
        """Only the box layouts: image + mask pairs read as segmentation unless detection is asked for."""
        return any(s.can_open(str(spec)) for s in BOX_SOURCES)

    @classmethod
    def for_data(cls, data, train_targets, config) -> DetectionTask:
        o = cls.options(config.task_options)
        return cls(data.class_names, o.detector, o.fpn_channels, o.hit)

    @classmethod
    def from_spec(cls, spec: dict) -> DetectionTask:
        return cls(spec["class_names"], spec.get("detector", "faster_rcnn"), spec.get("fpn_channels", 128),
                   spec.get("hit", "iou"))

    @staticmethod
    def load_targets(data, indices: np.ndarray, size: int) -> list[torch.Tensor]:
        out = []
        for i in indices:
            s = data.samples[int(i)]
            w, h = s.size if s.size is not None else s.load().shape[1::-1]
            t = torch.zeros((len(s.boxes), 5), dtype=torch.float32)
            if len(s.boxes):
                t[:, :4] = torch.tensor(s.boxes, dtype=torch.float32) * torch.tensor([size / w, size / h] * 2)
                t[:, 4] = torch.tensor(s.labels, dtype=torch.float32)
            out.append(t)
        return out

    @classmethod
    def describe(cls, data, parts: dict[str, np.ndarray]) -> dict:
        out = {}
        for part, idx in parts.items():
            counts = np.zeros(len(data.class_names), dtype=int)
            for i in idx:
                counts += np.bincount(np.asarray(data.samples[int(i)].labels, dtype=int),
                                      minlength=len(data.class_names))
            empty = sum(1 for i in idx if not data.samples[int(i)].boxes)
            out[f"boxes_{part}"] = dict(zip(data.class_names, counts.tolist()))
            out[f"images_without_boxes_{part}"] = empty
        return out

    @classmethod
    def check_split(cls, data, split) -> None:
        for part in ("train", "val", "test"):
            idx = getattr(split, part)
            if len(idx) and not any(data.samples[int(i)].boxes for i in idx):
                raise DataError(f"{data.name}: the {part} split has no boxes at all, so detection cannot be "
                                f"{'learnt' if part == 'train' else 'scored'}; give a split with boxes in every part.")
        check_scored_classes(data, split, "AP50")  # a class's AP would be nan, silently

    # -- targets ---------------------------------------------------------------------------------------------
    def collate(self, items: list) -> list[torch.Tensor]:
        return [torch.as_tensor(t) for t in items]

    def to_device(self, targets, device: torch.device) -> list[dict[str, torch.Tensor]]:
        return [{"boxes": t[:, :4].to(device), "labels": t[:, 4].long().to(device)} for t in targets]

    def gather(self, batches: list) -> list:
        return [item for batch in batches for item in batch]

    @classmethod
    def augment(cls, transform):
        if transform is None:
            return None
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        sanitize = v2.SanitizeBoundingBoxes(min_size=1.0)

        def moved(image: torch.Tensor, target: torch.Tensor):
            boxes = tv_tensors.BoundingBoxes(target[:, :4], format="XYXY", canvas_size=tuple(image.shape[-2:]))
            image, out = transform(image, {"boxes": boxes, "labels": target[:, 4]})
            out = sanitize(out)
            return image, torch.cat([out["boxes"].as_subclass(torch.Tensor), out["labels"][:, None]], 1).float()

        return moved

    # -- the network -----------------------------------------------------------------------------------------
    @classmethod
    def layout(cls, backbone: Backbone) -> tuple[list[LayerGroup], list[int]]:
        return feature_groups(backbone, REDUCTIONS, purpose="a feature pyramid")

    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int]) -> nn.Module:
        return DetectorHead(feature_channels(groups, taps), len(self.class_names), self.detector, self.fpn_channels)

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: nn.Module) -> nn.Module:
        return nn.ModuleDict({"encoder": nn.ModuleList([g.module for g in groups]), "detector": head})

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        net = super().build_network(backbone, strategy)
        if strategy.pretrained:
            freeze_statistics(net.suffix.layers)
        return net

    # -- training and scoring --------------------------------------------------------------------------------
    def loss(self, outputs: DetectorOutput, targets: list[dict]) -> torch.Tensor:
        if not outputs.detector.training:
            return torch.tensor(float("nan"))
        return sum(outputs.detector.losses(outputs.features, targets).values())

    def predict(self, outputs: DetectorOutput) -> list[dict[str, np.ndarray]]:
        """Per image: ``boxes`` (K×4, pixels of the resized image), ``scores`` and ``labels`` (0-based), best first."""
        return [{k: v.detach().float().cpu().numpy() if k != "labels" else v.cpu().numpy() for k, v in d.items()}
                for d in outputs.detector.detect(outputs.features)]

    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> BoxWriter:
        if heatmaps:
            raise ConfigError("--heatmaps is for classification models; a detection model writes its boxes")
        return BoxWriter(self, saved, out_dir)

    @property
    def metric(self) -> Metric:
        return MAP50

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

    def examples(self, data, test_idx, targets, limit: int = 4):
        return super().examples(data, test_idx, targets, limit=limit)

    def config(self) -> dict:
        return {"task": self.name, "class_names": self.class_names, "detector": self.detector,
                "fpn_channels": self.fpn_channels, "hit": self.hit}


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

