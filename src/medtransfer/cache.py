"""The frozen-prefix cache: compute the frozen layers once per image, not every epoch.

In ``linear`` and ``tune:K`` trials the frozen prefix (normalisation + the bottom groups, BatchNorm in eval mode) is
a fixed function of the image. One pass of the pre-trained backbone over the study's images stores the output at
every group boundary the plan needs; each trial then reads the cache at its own boundary and trains only its
suffix. With augmentation on, V augmented views of every training image are cached and each epoch draws one view
per image at random; with augmentation off, exactly one view is cached. Validation and test images are cached
un-augmented.

A decoder may also read the frozen encoder's intermediate maps (its skip features). A trial then reads several
boundaries at once, the tapped ones within its prefix and its cut, as the tuple its frozen prefix would return. Every
cached view keeps its own target, as the task's augmentation left it (a mask or boxes move with the image), and a
batch of targets is made by the task's ``collate``, so targets of any shape pass through.

Features are kept in RAM (float16 or float32) within a memory budget; past it they spill to a memory-mapped file,
or, without a folder for one, the cache is not used (said in one line). ``scratch`` and ``full`` never use it.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
)

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup
from medtransfer.data import Augmentation
from medtransfer.errors import ConfigError
from medtransfer.networks import FrozenPrefix, Normalize

DTYPES = {"float16": torch.float16, "float32": torch.float32}


def default_memory_budget() -> int:
    """A quarter of the memory available now (bytes); 2 GiB when it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info.get("MemAvailable", 8 << 30) // 4
    except (OSError, ValueError, IndexError):
        return 2 << 30


def parse_memory(text: str | int | None) -> int:
    """``'4GB'``, ``'512MB'``, ``'0.25'`` (share of available RAM) or bytes."""
    if text is None:
        return default_memory_budget()
    if isinstance(text, int):
        return text
    t = str(text).strip().upper().removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        value = float(t)
        return int(value * default_memory_budget() * 4) if value <= 1 else int(value)
    except ValueError:
        raise ConfigError(f"--cache-memory {text!r}: give a size like 4GB or 512MB, or a share like 0.25") from None


@dataclass(frozen=True)
class CacheKey:
    """Everything that changes the prefix's output. A trial may read the cache only if its key is equal."""

    backbone: str
    weights: str
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: str
    views: int
    images: str  # fingerprint of the decoded, resized images
    folded: bool = True  # BatchNorm folded into the convolutions, as the trainer folds an uncached prefix

    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def images_fingerprint(images: torch.Tensor) -> str:
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _Storage:
    """One boundary's features: a tensor in RAM, or a memory-mapped file."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, path: Path | None):
        self.path = path
        if path is None:
            self.tensor = torch.empty(shape, dtype=dtype)
        else:
            np_dtype = np.float16 if dtype == torch.float16 else np.float32
            self.array = np.lib.format.open_memmap(path, mode="w+", dtype=np_dtype, shape=shape)
            self.tensor = torch.from_numpy(self.array)


class FrozenPrefixCache:
    """Prefix outputs at several group boundaries for the train (V views) and val/test images of a study.

    ``reads`` maps each cut (frozen groups) a trial may use to what it reads: one boundary (a tensor), or a tuple
    of boundaries (a tuple of tensors, for a decoder's skip features). ``groups`` are the backbone groups the task's
    network runs (default: all of them).
    """

    def __init__(self, backbone: Backbone, key: CacheKey, reads: dict[int, int | tuple[int, ...]], *, views: int,
                 groups: list[LayerGroup] | None = None, dtype: str = "float16", memory_budget: int | None = None,
                 spill_dir: str | Path | None = None):
        self.backbone = backbone
        self.groups = groups if groups is not None else backbone.groups
        self.key = key
        self.reads = dict(reads)
        self.boundaries = sorted({b for r in self.reads.values() for b in ((r,) if isinstance(r, int) else r)})
        self.views = views
        self.dtype = DTYPES[dtype]
        self.memory_budget = default_memory_budget() if memory_budget is None else memory_budget
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self.train: dict[int, torch.Tensor] = {}  # boundary -> (N_train, V, C, H, W)
        self.eval: dict[int, torch.Tensor] = {}  # boundary -> (N_eval, C, H, W)
        self.train_targets: list[list] = []  # [view][train row]: each view's target as augmentation left it
        self.eval_targets: list = []
        self.train_rows: dict[int, int] = {}
        self.eval_rows: dict[int, int] = {}
        self.storage = "none"
        self.notice = ""
        self.folder: Path | None = None  # the spilled files' folder

    # -- building ----------------------------------------------------------------------------------------
    def _shapes(self, size: int, channels: int) -> dict[int, tuple[int, ...]]:
        x = torch.zeros(1, channels, size, size, dtype=torch.uint8)
        shapes = {}
        with torch.no_grad():
            y = Normalize(self.backbone.mean, self.backbone.std)(x)
            for b, g in enumerate(self.groups, start=1):
                y = g.module.eval()(y)
                if b in self.boundaries:
                    shapes[b] = tuple(y.shape[1:])
        return shapes

    def build(self, images, train_idx: np.ndarray, eval_idx: np.ndarray, augmentation: Augmentation, *,
              seed: int = 0, batch_size: int = 64, progress=None) -> bool:
        """Compute every boundary in one pass over ``images`` (a :class:`~medtransfer.engine.images.TrialImages`,
        whose task augments image and target together). Returns False (with :attr:`notice`) if the cache cannot
        be used."""
        pixels, targets, index, task = images.images, images.targets, images.index, images.task
        shapes = self._shapes(pixels.shape[-1], pixels.shape[1])
        n_train, n_eval = len(train_idx), len(eval_idx)
        item = torch.tensor([], dtype=self.dtype).element_size()
        need = sum(int(np.prod(s)) * item * (n_train * self.views + n_eval) for s in shapes.values())
        spill = need > self.memory_budget
        if spill and self.spill_dir is None:
            self.notice = (f"frozen-prefix cache off: it needs {need / 2**30:.1f} GiB, over the "
                           f"{self.memory_budget / 2**30:.1f} GiB budget (--cache-memory), and there is no folder to spill to")
            return False
        folder = None
        if spill:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=f"prefix-{self.key.digest()}-", dir=self.spill_dir))
            self.notice = f"frozen-prefix cache: {need / 2**30:.1f} GiB spilled to {folder}"
        self.storage = "memmap" if spill else "ram"
        for b, s in shapes.items():
            self.train[b] = _Storage((n_train, self.views, *s), self.dtype, folder / f"train-{b}.npy" if folder else None).tensor
            self.eval[b] = _Storage((n_eval, *s), self.dtype, folder / f"eval-{b}.npy" if folder else None).tensor
        self.folder = folder
        self.train_rows = {int(i): r for r, i in enumerate(train_idx)}
        self.eval_rows = {int(i): r for r, i in enumerate(eval_idx)}
        rows = lambda idx: torch.as_tensor([index[int(i)] for i in idx], dtype=torch.long)
        train_rows, eval_rows = rows(train_idx), rows(eval_idx)
        train_items = list(task.codec.take(targets, train_rows.numpy()))
        self.eval_targets = list(task.codec.take(targets, eval_rows.numpy()))

        augment = task.codec.augment(augmentation.build()) if self.views > 1 or augmentation.enabled else None
        total = n_train * self.views + n_eval
        bar = progress.add_task("caching frozen layers", total=total) if progress else None
        groups = [g.module.eval() for g in self.groups[: max(self.boundaries)]]
        if self.key.folded:
            with torch.no_grad():
                probe = eval_rows[:4] if len(eval_rows) else train_rows[:4]
                groups = self._folded_groups(Normalize(self.backbone.mean, self.backbone.std)(pixels[probe]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for v in range(self.views):
                view_targets = list(train_items)
                self._fill(groups, pixels, train_rows, view_targets, augment,
                           lambda b, sl, y, v=v: self.train[b][sl, v].copy_(y), batch_size, progress, bar)
                self.train_targets.append(view_targets)
            self._fill(groups, pixels, eval_rows, None, None, lambda b, sl, y: self.eval[b][sl].copy_(y), batch_size, progress, bar)
        if bar is not None:
            progress.remove_task(bar)
        return True

    @torch.no_grad()
    def _fill(self, groups, images, rows, view_targets, augment, put, batch_size, progress, bar) -> None:
        """Run the frozen groups over ``images[rows]``; with ``augment``, each image is drawn with its target and
        the drawn target replaces it in ``view_targets``."""
        normalize = Normalize(self.backbone.mean, self.backbone.std)
        for start in range(0, len(rows), batch_size):
            x = images[rows[start:start + batch_size]]
            sl = slice(start, start + len(x))
            if augment is not None:
                pairs = [augment(im, t) for im, t in zip(x, view_targets[sl])]
                x = torch.stack([p[0] for p in pairs])
                view_targets[sl] = [p[1] for p in pairs]
            y = normalize(x)
            for b, g in enumerate(groups, start=1):
                y = g(y)
                if b in self.train:
                    put(b, sl, y.to(self.dtype))
            if bar is not None:
                progress.advance(bar, len(x))

    def _folded_groups(self, probe: torch.Tensor) -> list[torch.nn.Module]:
        """The frozen groups with BatchNorm folded into the convolutions, exactly as the trainer folds an uncached
        trial's prefix (:meth:`~medtransfer.networks.FrozenPrefix.folded`), so cached and uncached trials compute
        the same numbers."""
        return list(FrozenPrefix(*(g.module for g in self.groups[: max(self.boundaries)])).folded(probe).layers)

    # -- pickling (for trials in other processes) ----------------------------------------------------------
    def __getstate__(self) -> dict:
        """A spilled cache travels as its files' paths (the worker maps the same files); one in RAM as its tensors."""
        state = dict(self.__dict__)
        if self.storage == "memmap":
            state["train"] = {b: str(self.folder / f"train-{b}.npy") for b in self.train}
            state["eval"] = {b: str(self.folder / f"eval-{b}.npy") for b in self.eval}
        return state

    def __setstate__(self, state: dict) -> None:
        if state.get("storage") == "memmap":
            for part in ("train", "eval"):  # copy-on-write maps: a worker never changes the files
                state[part] = {b: torch.from_numpy(np.load(path, mmap_mode="c")) for b, path in state[part].items()}
        self.__dict__.update(state)

    # -- reading -----------------------------------------------------------------------------------------
    def covers(self, key: CacheKey, frozen: int) -> bool:
        return key == self.key and frozen in self.reads and all(b in self.train for b in self._read(frozen))

    def _read(self, frozen: int) -> tuple[int, ...]:
        r = self.reads[frozen]
        return (r,) if isinstance(r, int) else r

    def _features(self, store: dict[int, torch.Tensor], frozen: int, view_axis: bool):
        maps = tuple(store[b] if view_axis else store[b][:, None] for b in self._read(frozen))
        return maps[0] if isinstance(self.reads[frozen], int) else maps

    def train_dataset(self, frozen: int, indices: np.ndarray, seed: int, collate=None) -> Dataset:
        rows = torch.as_tensor([self.train_rows[int(i)] for i in indices], dtype=torch.long)
        return _CachedViews(self._features(self.train, frozen, True), rows, self.train_targets, self.views, seed,
                            collate)

    def eval_dataset(self, frozen: int, indices: np.ndarray, collate=None) -> Dataset:
        rows = torch.as_tensor([self.eval_rows[int(i)] for i in indices], dtype=torch.long)
        return _CachedViews(self._features(self.eval, frozen, False), rows, [self.eval_targets], 1, 0, collate)


class _CachedViews(Dataset):
    """Batches of ``(features, targets)`` by a list of positions; for training, one of the V cached views of each
    image is drawn at random on every access (with that view's target). ``features`` is one ``N×V×…`` tensor or a
    tuple of them, indexed by whole batches; ``targets[view][row]`` are batched by ``collate`` (the task's)."""

    def __init__(self, features, rows: torch.Tensor, targets: list[list], views: int, seed: int, collate=None):
        from torch.utils.data import default_collate

        self.features, self.rows, self.views, self.targets = features, rows, views, targets
        self.collate = collate or default_collate
        self.generator = torch.Generator().manual_seed(seed + 7919)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]):
        idx = torch.as_tensor(positions, dtype=torch.long)
        if self.views > 1:
            view = torch.randint(self.views, (len(idx),), generator=self.generator)
        else:
            view = torch.zeros(len(idx), dtype=torch.long)
        r = self.rows[idx]

        def take(f: torch.Tensor) -> torch.Tensor:
            return f[r, view].float().contiguous(memory_format=torch.channels_last)

        x = take(self.features) if isinstance(self.features, torch.Tensor) else tuple(take(f) for f in self.features)
        return x, self.collate([self.targets[v][i] for i, v in zip(r.tolist(), view.tolist())])


def cached_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    """Batches in the same order as the image loader with the same seed (the same sampler and generator)."""
    g = torch.Generator().manual_seed(seed)  # shared by loader and sampler, exactly as DataLoader(shuffle=True) does
    sampler = RandomSampler(dataset, generator=g) if shuffle else SequentialSampler(dataset)
    batches = BatchSampler(sampler, batch_size, drop_last=shuffle and len(dataset) > batch_size)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=g)
