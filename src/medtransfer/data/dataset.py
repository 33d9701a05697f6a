"""Loaded images (and masks) as tensors: decode and resize once, augment per draw.

For segmentation the transform is applied jointly: geometric transforms move the image and its mask alike (the mask
with nearest-neighbour interpolation), intensity transforms touch the image only — torchvision's v2 transforms do
this when the mask is a ``tv_tensors.Mask``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medtransfer.data.sources.base import LabelledImages
from medtransfer.data.transforms import resize_image, resize_mask


def load_images(data: LabelledImages, indices: Sequence[int], size: int, progress=None) -> torch.Tensor:
    """Decode and resize ``data.samples[indices]`` into one ``uint8`` ``N×C×size×size`` tensor.

    C is 1 when every image is gray and 3 otherwise (gray images are then repeated to RGB).
    """
    images = []
    for i in indices:
        images.append(resize_image(data.samples[i].load(), size))
        if progress is not None:
            progress()
    if any(t.shape[0] == 3 for t in images):
        images = [t.expand(3, -1, -1) if t.shape[0] == 1 else t for t in images]
    if not images:
        return torch.empty((0, 1, size, size), dtype=torch.uint8)
    return torch.stack(images)


def load_masks(data, indices: Sequence[int], size: int, progress=None) -> torch.Tensor:
    """Read and resize (nearest neighbour) the masks of ``data.samples[indices]``: ``uint8`` ``N×size×size``."""
    masks = []
    for i in indices:
        masks.append(resize_mask(data.samples[i].load_mask(), size))
        if progress is not None:
            progress()
    return torch.stack(masks) if masks else torch.empty((0, size, size), dtype=torch.uint8)


class ImageTensorDataset(Dataset):
    """``(image, target)`` pairs from preloaded ``uint8`` images, with an optional per-draw transform.

    Targets with more than one dimension per sample (``N×H×W`` masks) are transformed together with the image.
    """

    def __init__(self, images: torch.Tensor, targets: np.ndarray, transform=None):
        self.images = images
        self.targets = torch.as_tensor(np.asarray(targets))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x, y = self.images[i], self.targets[i]
        if self.transform is not None:
            if y.ndim >= 2:
                return joint_transform(self.transform, x, y)
            x = self.transform(x)
        return x, y


def joint_transform(transform, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a v2 ``transform`` to an image and its mask together (geometry to both, intensity to the image)."""
    from torchvision import tv_tensors

    x, m = transform(image, tv_tensors.Mask(mask))
    return x, m.as_subclass(torch.Tensor)
