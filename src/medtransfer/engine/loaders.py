"""A trial's batches: its images (the training ones augmented) or the frozen prefix's cached outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from medtransfer.backbones import Backbone
from medtransfer.cache import FrozenPrefixCache, cached_loader
from medtransfer.config import RunConfig
from medtransfer.data import Augmentation, ImageTensorDataset
from medtransfer.engine.data import PreparedData
from medtransfer.engine.images import TrialImages
from medtransfer.engine.prefix_cache import cache_key
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks import Task


def image_loader(task: Task, images: torch.Tensor, targets, batch_size: int, *, augment=None,
                 shuffle=False, seed=0) -> DataLoader:
    """Batches of ``(images, targets)``; the task batches the targets. ``augment(image, target)`` per draw."""
    from torch.utils.data import default_collate

    g = torch.Generator().manual_seed(seed)
    ds = ImageTensorDataset(images, targets, augment)

    def collate(batch):
        return default_collate([x for x, _ in batch]), task.codec.collate([y for _, y in batch])

    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, collate_fn=collate,
                      drop_last=shuffle and len(ds) > batch_size)


@dataclass
class TrialBatches:
    """Where one trial's batches come from: its own training subset ``train_idx``, the validation and test splits,
    as images or, for a network whose frozen prefix the cache covers, as the cached outputs of that prefix."""

    config: RunConfig
    prepared: PreparedData
    images: TrialImages
    task: Task
    train_idx: np.ndarray
    cache: FrozenPrefixCache | None = None

    def reads_cache(self, strategy: Strategy, backbone: Backbone, net: TransferNet) -> bool:
        """Whether ``net``, cut from ``backbone`` for ``strategy``, trains on the cache."""
        return (self.cache is not None and strategy.cacheable
                and self.cache.covers(cache_key(self.config, backbone, self.images), net.frozen_groups))

    def loaders(self, frozen: int, cached: bool):
        """(train, validation, test) batches: the cache's outputs at boundary ``frozen`` when ``cached``, else the
        images (the training ones augmented)."""
        bs, seed, task, split = self.config.train.batch_size, self.config.seed, self.task, self.prepared.split
        if cached:
            train = cached_loader(self.cache.train_dataset(frozen, self.train_idx, seed, task.codec.collate), bs,
                                  shuffle=True, seed=seed)
            val, test = (cached_loader(self.cache.eval_dataset(frozen, idx, task.codec.collate), 2 * bs, shuffle=False,
                                       seed=0) for idx in (split.val, split.test))
            return train, val, test
        augment = task.codec.augment(Augmentation.preset(self.config.augmentation).build())
        train = image_loader(task, *self.images.rows(self.train_idx), bs, augment=augment, shuffle=True, seed=seed)
        return train, self.evaluation(split.val), self.evaluation(split.test)

    def evaluation(self, indices: np.ndarray) -> DataLoader:
        """The images of ``indices`` in batches for scoring (twice the training batch size, in order)."""
        return image_loader(self.task, *self.images.rows(indices), 2 * self.config.train.batch_size)
