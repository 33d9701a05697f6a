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

import math

import numpy as np
import torch

from medtransfer.data.sources.boxes import BOX_SOURCES, BoxedImages, MaskBoxSource
from medtransfer.data.splits import check_scored_classes
from medtransfer.errors import ConfigError, DataError, MedTransferError
from medtransfer.tasks.base import Task, TaskParts
from medtransfer.tasks.detection.network import REDUCTIONS, DetectorFactory, DetectorHead, DetectorOutput
from medtransfer.tasks.detection.options import DetectionOptions
from medtransfer.tasks.detection.outputs import BoxTables, DetectionReport
from medtransfer.tasks.detection.scoring import MAP50, DetectionScorer, torchmetrics_map
from medtransfer.tasks.inputs import TaskInputs
from medtransfer.tasks.registry import register_task
from medtransfer.tasks.targets import RaggedTargets

__all__ = ["DETECTION", "DetectionOptions", "DetectorHead", "DetectorOutput", "MAP50", "REDUCTIONS", "torchmetrics_map"]


class DetectionInputs(TaskInputs):
    """Box layouts only when told from the layout; an input size that follows the stored images."""

    def recognises(self, spec: str) -> bool:
        """Only the box layouts: image + mask pairs read as segmentation unless detection is asked for."""
        return any(s.can_open(str(spec)) for s in BOX_SOURCES)

    def recipe_for(self, spec: str, **options) -> dict:
        """The recipe, with the input size at most the stored images' median longest side (rounded up to a
        multiple of 32): upsampling adds no detail and costs time quadratically (Kvasir-SEG's 256 px images train at
        256, not 384)."""
        recipe = dict(self.recipe)
        try:
            sides = [max(s.size) for s in self.read(spec, **options).samples if s.size]
        except MedTransferError:  # unreadable data: the run's own reading says why
            return recipe
        if sides:
            recipe["input_size"] = min(recipe["input_size"], 32 * math.ceil(float(np.median(sides)) / 32))
        return recipe

    def describe(self, data, parts: dict[str, np.ndarray]) -> dict:
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

    def check_split(self, data, split) -> None:
        for part in ("train", "val", "test"):
            idx = getattr(split, part)
            if len(idx) and not any(data.samples[int(i)].boxes for i in idx):
                raise DataError(f"{data.name}: the {part} split has no boxes at all, so detection cannot be "
                                f"{'learnt' if part == 'train' else 'scored'}; give a split with boxes in every part.")
        check_scored_classes(data, split, "AP50")  # a class's AP would be nan, silently


class BoxTargets(RaggedTargets):
    """One ``M×5`` tensor per image (``x1 y1 x2 y2 label``, pixels of the resized image); boxes move with the image
    when it is flipped, scaled or jittered, and those pushed out of it are dropped."""

    def load_targets(self, data, indices: np.ndarray, size: int) -> list[torch.Tensor]:
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

    def to_device(self, targets, device: torch.device) -> list[dict[str, torch.Tensor]]:
        return [{"boxes": t[:, :4].to(device), "labels": t[:, 4].long().to(device)} for t in targets]

    def augment(self, transform):
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


def detection_parts(spec: dict) -> TaskParts:
    names = list(spec["class_names"])
    if not names:
        raise ConfigError("detection needs at least one box class")
    o = DETECTION.inputs.options({k: spec[k] for k in ("detector", "fpn_channels", "hit") if k in spec})
    scorer = DetectionScorer(names, o.hit)
    return TaskParts(head=DetectorFactory(len(names), o.detector, o.fpn_channels), scorer=scorer,
                     writer=BoxTables(scorer, names), report=DetectionReport("detection", MAP50, names),
                     spec={"class_names": names, **o.__dict__})


def detection_for_data(data, train_targets, config) -> TaskParts:
    return detection_parts({"class_names": data.class_names, **DETECTION.inputs.options(config.task_options).__dict__})


DETECTION = register_task(Task(
    "detection",
    inputs=DetectionInputs(
        sources=(*BOX_SOURCES, MaskBoxSource), data_type=BoxedImages,
        detect_priority=30,  # before the others: VOC's Annotations/ + JPEGImages/ would also read as two classes
        layouts=("Pascal VOC (Annotations/*.xml + JPEGImages/), a COCO JSON file, a CSV with columns "
                 "image,x1,y1,x2,y2,label[,split,patient_id], or image + mask pairs with --task detection"),
        options_type=DetectionOptions,
        test_fraction=0.2,
        # the measured defaults of a detection run (docs/benchmarks.md): what a run uses where the user sets nothing.
        # Flips only: shifts and zooms make new image borders, and annotators often leave objects cut by the border
        # unlabelled (BCCD: 69 % of the confident unmatched RBC detections touch the border), a convention the network
        # learns only when the border stays where it is (BCCD test mAP@0.5 0.879 with 'boxes+hflip+vflip', 0.909 without)
        # 384 px: BCCD's 640×480 images at 0.6× (test mAP@0.5 0.909, 17 min a trial here); smaller images are not
        # upsampled (:meth:`DetectionInputs.recipe_for`)
        recipe={"input_size": 384, "augmentation": "none+hflip+vflip",
                "train": {"epochs": 9, "batch_size": 4, "lr": 3e-4, "warmup_epochs": 1, "patience": None,
                          "ema_decay": 0.99}},
        examples_limit=4),
    codec=BoxTargets(columns=5), build=detection_for_data, rebuild=detection_parts, head_layout=DetectorFactory(0)))
