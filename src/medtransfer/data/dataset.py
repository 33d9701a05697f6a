"""Loaded images (and masks) as tensors: decode and resize once, augment per draw.

Augmentation is a callable ``(image, target) -> (image, target)`` that a task builds from an image transform: targets
that move with the image are moved alike. For masks, :func:`joint_transform` moves both (the mask with
nearest-neighbour interpolation) and changes the intensities of the image only, as torchvision's v2 transforms do
when the mask is a ``tv_tensors.Mask``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from medtransfer.data.sources.base import ImageSet
from medtransfer.data.transforms import resize_image, resize_mask


def load_images(data: ImageSet, indices: Sequence[int], size: int, progress=None) -> torch.Tensor:
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
    """``(image, target)`` pairs from preloaded ``uint8`` images and one target item per image (any sequence that
    integer indexing reads), with an optional per-draw ``augment(image, target) -> (image, target)``."""

    def __init__(self, images: torch.Tensor, targets, augment=None):
        self.images = images
        self.targets = targets
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x, y = self.images[i], self.targets[i]
        return (x, y) if self.augment is None else self.augment(x, y)


def joint_transform(transform, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a v2 ``transform`` to an image and its mask together (geometry to both, intensity to the image)."""
    from torchvision import tv_tensors

    x, m = transform(image, tv_tensors.Mask(mask))
    return x, m.as_subclass(torch.Tensor)
