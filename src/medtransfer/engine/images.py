"""The decoded images of one dataset, loaded once and shared by every trial, and their fingerprint."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from medtransfer.cache import images_fingerprint
from medtransfer.data import load_images
from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.engine.data import PreparedData
from medtransfer.tasks import Task


@dataclass
class TrialImages:
    """The images (and targets) of one dataset, decoded and resized once, shared by every trial of a study."""

    images: torch.Tensor  # uint8 N×C×S×S, only split members, in the order of ``index``
    targets: object  # one item per image, aligned with ``images``, in the task's kind of sequence
    index: dict[int, int]  # sample index -> row of ``images``
    task: Task  # whose codec indexes ``targets``

    @classmethod
    def load(cls, prepared: PreparedData, size: int, progress=None) -> TrialImages:
        idx = np.concatenate([prepared.split.train, prepared.split.val, prepared.split.test])
        bar = progress.add_task("loading images", total=len(idx)) if progress else None
        tick = (lambda: progress.advance(bar)) if progress else None
        images = load_images(prepared.data, idx, size, progress=tick)
        if bar is not None:
            progress.remove_task(bar)
        targets = prepared.task.codec.load_targets(prepared.data, idx, size)
        return cls(images, targets, {int(i): r for r, i in enumerate(idx)}, prepared.task)

    @functools.cached_property
    def fingerprint(self) -> str:
        return images_fingerprint(self.images)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray([self.index[int(i)] for i in indices], dtype=np.int64)

    def rows(self, indices: np.ndarray):
        r = self.positions(indices)
        return self.images[torch.as_tensor(r)], self.task.codec.take(self.targets, r)


def data_fingerprint(prepared: PreparedData, images: TrialImages, source: str | None = None) -> DataFingerprint:
    """The fingerprint of what a run or a study read: every sample's decoded pixels, target and split."""
    split_of = {int(i): name for name in ("train", "val", "test") for i in getattr(prepared.split, name)}
    idx = np.asarray(sorted(images.index), dtype=np.int64)
    rows = images.positions(idx)
    targets = images.task.codec.take(images.targets, rows)
    return DataFingerprint.of([prepared.data.samples[int(i)].ref for i in idx], source or prepared.data.name,
                              images.images[torch.as_tensor(rows)], targets, [split_of[int(i)] for i in idx])
