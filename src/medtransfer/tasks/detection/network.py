"""Detection's network: torchvision's feature pyramid and detector on the backbone's stride-8/16/32 maps, and the
BatchNorm policy for pre-trained detection backbones (statistics frozen, as torchvision does)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup, feature_channels, feature_groups
from medtransfer.errors import ConfigError
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks.head import HeadFactory

#: the strides of the backbone maps the feature pyramid reads
REDUCTIONS = (8, 16, 32)
DETECTORS = ("faster_rcnn", "retinanet", "fcos")


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


class DetectorFactory(HeadFactory):
    """The pyramid and detector on the groups that end at :data:`REDUCTIONS`; BatchNorm statistics frozen in the
    trainable groups of a pre-trained backbone."""

    def __init__(self, num_classes: int, detector: str = "faster_rcnn", fpn_channels: int = 128):
        self.num_classes, self.detector, self.fpn_channels = num_classes, detector, fpn_channels

    def layout(self, backbone: Backbone) -> tuple[list[LayerGroup], list[int]]:
        return feature_groups(backbone, REDUCTIONS, purpose="a feature pyramid")

    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int]) -> nn.Module:
        return DetectorHead(feature_channels(groups, taps), self.num_classes, self.detector, self.fpn_channels)

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: nn.Module) -> nn.Module:
        return nn.ModuleDict({"encoder": nn.ModuleList([g.module for g in groups]), "detector": head})

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        net = super().build_network(backbone, strategy)
        if strategy.pretrained:
            freeze_statistics(net.suffix.layers)
        return net
