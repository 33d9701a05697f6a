"""The frozen-prefix cache of a study or a run: its key, and the one pass of the backbone that fills it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtransfer.backbones import Backbone, create_backbone
from medtransfer.cache import CacheKey, FrozenPrefixCache
from medtransfer.config import Settings
from medtransfer.data import Augmentation
from medtransfer.engine.data import PreparedData
from medtransfer.engine.images import TrialImages
from medtransfer.engine.network import model_options
from medtransfer.strategies import Strategy


def cache_views(config: Settings) -> int:
    return config.cache_views if Augmentation.preset(config.augmentation).enabled else 1


def cache_key(config: Settings, backbone: Backbone, images: TrialImages) -> CacheKey:
    weights = config.weights
    if weights not in ("imagenet", "scratch") and Path(weights).is_file():
        stat = Path(weights).stat()
        weights = f"{Path(weights).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return CacheKey(backbone=config.backbone, weights=weights, input_size=config.input_size, mean=backbone.mean,
                    std=backbone.std, augmentation=config.augmentation, views=cache_views(config),
                    images=images.fingerprint, folded=config.fold_batchnorm)


def build_cache(config: Settings, prepared: PreparedData, images: TrialImages, strategies: list[Strategy], *,
                memory_budget: int | None = None, spill_dir: Path | None = None, progress=None,
                log=None) -> FrozenPrefixCache | None:
    """One pass of the pre-trained backbone over the images, keeping every boundary ``strategies`` read at."""
    cacheable = [s for s in strategies if s.cacheable]
    if not config.cache or not cacheable:
        return None
    backbone = create_backbone(config.backbone, weights=config.weights, num_classes=prepared.data.num_classes,
                               **model_options(config))
    task = prepared.task
    groups, taps = task.head.layout(backbone)
    reads = {s.frozen_groups(len(groups)): task.head.cache_reads(s.frozen_groups(len(groups)), taps) for s in cacheable}
    cache = FrozenPrefixCache(backbone, cache_key(config, backbone, images), reads, views=cache_views(config),
                              groups=groups, dtype=config.cache_dtype, memory_budget=memory_budget, spill_dir=spill_dir)
    eval_idx = np.concatenate([prepared.split.val, prepared.split.test])
    # in the training batch size: a convolution's rounding can depend on the batch size, and with the same size
    # the cached maps are the very numbers the uncached prefix computes (AdamW amplifies the smallest difference)
    ok = cache.build(images, prepared.split.train, eval_idx, Augmentation.preset(config.augmentation),
                     seed=config.split_seed, batch_size=config.train.batch_size, progress=progress)
    if cache.notice and log is not None:
        log(cache.notice)
    return cache if ok else None
