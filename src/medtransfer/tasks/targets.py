"""A task's target codec: how its targets are loaded, indexed, batched, moved to a device and augmented with the image.

Targets travel as one item per sample (a class index, a mask, a list of boxes, …) in plain Python sequences or
arrays until :meth:`TargetCodec.collate` batches them; what a batch of targets is, and how it moves to a device, is the
codec's business, so ragged targets pass through the loaders, the trainer and the cache unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch


class TargetCodec:
    """Targets as arrays that PyTorch's default collation batches: by default the data set's ``targets()``."""

    def load_targets(self, data, indices: np.ndarray, size: int) -> Sequence:
        """The targets of ``data.samples[indices]`` for images resized to ``size``: one item per sample, in a
        sequence that :meth:`take` can index."""
        return data.targets()[np.asarray(indices, dtype=np.int64)]

    def take(self, targets: Sequence, rows) -> Sequence:
        """The targets at ``rows`` (positions), in the same kind of sequence."""
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(targets, (np.ndarray, torch.Tensor)):
            return targets[torch.as_tensor(rows)] if isinstance(targets, torch.Tensor) else targets[rows]
        return [targets[int(r)] for r in rows]

    def collate(self, items: list):
        """A batch of target items as the loss takes them (default: PyTorch's default collation)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def to_device(self, targets, device: torch.device):
        return targets.to(device, non_blocking=True)

    def gather(self, batches: list) -> Any:
        """Per-batch predictions or targets (on the CPU) as one container over all cases."""
        return torch.cat(batches).numpy()

    def augment(self, transform: Callable | None) -> Callable | None:
        """``(image, target) -> (image, target)`` with the image transform; targets that move with the image
        (masks, boxes) must be moved alike. By default the target is left as it is. No transform, no augmentation."""
        if transform is None:
            return None
        return lambda image, target: (transform(image), target)

    def own_size_targets(self, data, indices: np.ndarray) -> Sequence | None:
        """The targets of ``data.samples[indices]`` at each image's own size, when the test metrics score there rather
        than at the input size (segmentation: the masks a delivered model writes are the image's size, so its test
        Dice is measured on them). ``None`` (the default): the test metrics read the targets at the input size."""
        return None


class RaggedTargets(TargetCodec):
    """Targets of a different length per image (points, boxes): a ``K×columns`` float array per sample from its
    ``target``, batched as a list of tensors, gathered as one list."""

    def __init__(self, columns: int = 1):
        self.columns = columns

    def load_targets(self, data, indices: np.ndarray, size: int) -> list[np.ndarray]:
        return [np.asarray(data.samples[int(i)].target, dtype=np.float32).reshape(-1, self.columns) for i in indices]

    def collate(self, items: list) -> list[torch.Tensor]:
        return [torch.as_tensor(t) for t in items]

    def to_device(self, targets, device: torch.device):
        return [t.to(device) for t in targets]

    def gather(self, batches: list) -> list:
        return [x for b in batches for x in (b if isinstance(b, list) else b.numpy())]
