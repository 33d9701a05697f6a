"""Image preprocessing and augmentation for medical images.

Images are resized once, when a dataset is loaded, and kept as ``uint8`` tensors. Training augmentation is mild and
anatomy-preserving by default: small rotations, shifts and scalings, brightness/contrast jitter. Flips are off unless
asked for, since anatomy has sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from medtransfer.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    """Random training-time transforms; :meth:`none` switches them all off."""

    rotate_degrees: float = 15.0
    translate: float = 0.08
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2
    contrast: float = 0.2
    hflip: bool = False
    vflip: bool = False

    @classmethod
    def none(cls) -> Augmentation:
        return cls(0.0, 0.0, (1.0, 1.0), 0.0, 0.0, False, False)

    @classmethod
    def preset(cls, spec: str) -> Augmentation:
        """``none``, ``light``, ``strong`` or ``boxes``, optionally with ``+hflip`` and/or ``+vflip`` (e.g.
        ``light+hflip``). ``boxes`` is for detection: shifts, scalings and intensity jitter but no rotation, which
        would turn each box into the larger box around its rotated corners."""
        presets = {"none": cls.none(), "light": cls(), "strong": cls(25.0, 0.12, (0.8, 1.2), 0.3, 0.3),
                   "boxes": cls(0.0, 0.1, (0.75, 1.25), 0.2, 0.2)}
        name, *flips = spec.split("+")
        if name not in presets or not set(flips) <= {"hflip", "vflip"}:
            raise ConfigError(
                f"unknown augmentation {spec!r}; choose one of {', '.join(presets)}, optionally with +hflip/+vflip"
            )
        return replace(presets[name], hflip="hflip" in flips, vflip="vflip" in flips)

    @property
    def enabled(self) -> bool:
        return self != Augmentation.none()

    def build(self) -> v2.Transform | None:
        if not self.enabled:
            return None
        ops: list[v2.Transform] = []
        if self.hflip:
            ops.append(v2.RandomHorizontalFlip())
        if self.vflip:
            ops.append(v2.RandomVerticalFlip())
        if self.rotate_degrees or self.translate or self.scale != (1.0, 1.0):
            ops.append(
                v2.RandomAffine(
                    degrees=self.rotate_degrees,
                    translate=(self.translate, self.translate),
                    scale=self.scale,
                    interpolation=v2.InterpolationMode.BILINEAR,
                )
            )
        if self.brightness or self.contrast:
            ops.append(v2.ColorJitter(brightness=self.brightness, contrast=self.contrast))
        return v2.Compose(ops)

    def to_dict(self) -> dict:
        return asdict(self)


def resize_image(image: np.ndarray, size: int) -> torch.Tensor:
    """``uint8`` ``H×W[×3]`` array to a ``uint8`` ``C×size×size`` tensor (bicubic, anti-aliased, aspect not kept)."""
    t = torch.tensor(np.asarray(image))  # a copy: source arrays may be read-only
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    if t.shape[-2:] != (size, size):
        t = resize_batch(t[None], size)[0]
    return t


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8`` ``N×C×H×W`` to ``uint8`` ``N×C×size×size``: the resize of :func:`resize_image`, kept apart so that
    the exported ONNX graph traces the very function training uses."""
    t = F.interpolate(images.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return t.round().clamp_(0, 255).to(torch.uint8)


def resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """``uint8`` ``H×W`` class-index mask to ``uint8`` ``size×size`` (nearest neighbour: no new label values)."""
    t = torch.tensor(np.asarray(mask, dtype=np.uint8))
    if t.shape != (size, size):
        t = F.interpolate(t[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0].to(torch.uint8)
    return t
