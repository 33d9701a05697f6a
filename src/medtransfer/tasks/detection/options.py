"""Detection's own settings: the detector, the feature pyramid's width, and the FROC's hit rule."""

from __future__ import annotations

from dataclasses import dataclass

from medtransfer.errors import parameter_error
from medtransfer.metrics.froc import HITS
from medtransfer.tasks.detection.network import DETECTORS
from medtransfer.tasks.inputs import TaskOptions


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
