"""Loaded images as tensors: decode and resize once, augment per draw."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medtransfer.data.sources.base import LabelledImages
from medtransfer.data.transforms import resize_image


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


class ImageTensorDataset(Dataset):
    """``(image, target)`` pairs from preloaded ``uint8`` images, with an optional per-draw transform."""

    def __init__(self, images: torch.Tensor, targets: np.ndarray, transform=None):
        self.images = images
        self.targets = torch.as_tensor(np.asarray(targets))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[i]
