"""One training run: data → split → backbone cut by the strategy → training → test metrics → run folder.

This is the unit a study repeats for every (strategy, training fraction, seed). The CLI's ``train`` and
``evaluate`` are thin wrappers over :func:`train` and :func:`evaluate`. Nothing here depends on the task: the
:class:`~medtransfer.tasks.Task` (classification, segmentation) brings its targets, network head, loss and metrics.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from medtransfer.backbones import DEFAULT_BACKBONE, Backbone, create_backbone
from medtransfer.cache import (
    CacheKey,
    FrozenPrefixCache,
    cached_loader,
    images_fingerprint,
)
from medtransfer.data import (
    Augmentation,
    ImageSet,
    ImageTensorDataset,
    load_images,
    make_split,
    read_data,
)
from medtransfer.data.splits import DataSplit, check_split, training_subset
from medtransfer.errors import ConfigError, DataError, TrainingDiverged
from medtransfer.files import atomic_write
from medtransfer.networks import TransferNet
from medtransfer.report import plot_training_curve
from medtransfer.saved_model import load_model, save_model
from medtransfer.strategies import Strategy, parse_strategy
from medtransfer.tasks import TASKS, Task, task_of
from medtransfer.tasks.segmentation import DECODERS
from medtransfer.training import FitResult, TrainConfig, Trainer, resolve_device
from medtransfer.training.config import DEFAULT_INPUT_SIZE


@dataclass
class RunConfig:
    """Everything that defines one training run."""

    data: str
    strategy: str = "full"
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"
    input_size: int = DEFAULT_INPUT_SIZE
    seed: int = 0
    train_fraction: float = 1.0
    split_seed: int = 0
    augmentation: str = "light"
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    source_options: dict = field(default_factory=dict)
    cache: bool = True  # frozen-prefix cache for linear / tune:K
    cache_views: int = 8  # augmented views cached per training image (1 when augmentation is off)
    cache_dtype: str = "float16"
    task: str = "auto"  # classification, segmentation, or told by the data's layout
    test_fraction: float | None = None  # share of the data in a seeded test split (default: the task's)
    decoder: str = "unet"  # segmentation: unet or fpn

    def __post_init__(self) -> None:
        if self.task != "auto" and self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose {', '.join(TASKS)} or auto")
        if self.decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {self.decoder!r}; choose {' or '.join(DECODERS)}")
        if self.test_fraction is not None and not 0 < self.test_fraction < 0.9:
            raise ConfigError(f"test_fraction {self.test_fraction} must be in (0, 0.9)")
        if self.cache_dtype not in ("float16", "float32"):
            raise ConfigError(f"cache_dtype {self.cache_dtype!r} must be float16 or float32")
        if self.cache_views < 1:
            raise ConfigError(f"cache_views {self.cache_views} must be >= 1")
        if isinstance(self.train, dict):
            self.train = TrainConfig.from_dict(self.train)
        self.strategy = parse_strategy(self.strategy).name
        Augmentation.preset(self.augmentation)
        if not 16 <= self.input_size <= 1024:
            raise ConfigError(f"input_size {self.input_size} must be between 16 and 1024 pixels")
        if not 0 < self.train_fraction <= 1:
            raise ConfigError(f"train_fraction {self.train_fraction} must be in (0, 1]")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


@dataclass
class RunResult:
    out: Path
    metrics: dict
    fit: FitResult


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment() -> dict:
    import timm
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "platform": platform.platform(),
    }


@dataclass
class PreparedData:
    """A source read and split, with the training subset for one (fraction, seed)."""

    data: ImageSet
    split: DataSplit
    train_idx: np.ndarray

    @property
    def task(self) -> type[Task]:
        return task_of(self.data)

    def card(self) -> dict:
        return {
            "name": self.data.name,
            "task": self.task.name,
            "modality": self.data.modality,
            "classes": self.data.class_names,
            "split_given": self.split.given,
            "counts": {"train_used": len(self.train_idx), **self.split.counts()},
            **self.task.describe(self.data, {"train_used": self.train_idx, "val": self.split.val, "test": self.split.test}),
        }


def prepare_data(config: RunConfig, data: ImageSet | None = None) -> PreparedData:
    data = data if data is not None else read_data(config.data, task=config.task, **config.source_options)
    task = task_of(data)
    if config.task not in ("auto", task.name):
        raise ConfigError(f"{config.data}: the task is {config.task}, but the data are laid out for {task.name}")
    split = make_split(data, seed=config.split_seed, test_fraction=config.test_fraction or task.test_fraction)
    train_idx = training_subset(data, split.train, config.train_fraction, config.seed)
    check_split(data, DataSplit(train_idx, split.val, split.test, split.given))
    return PreparedData(data, split, train_idx)


def _loader(images: torch.Tensor, targets, batch_size: int, *, transform=None, shuffle=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    ds = ImageTensorDataset(images, targets, transform)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=shuffle and len(ds) > batch_size)


def _model_options(config: RunConfig) -> dict:
    """Architecture options for ``timm.create_model`` (regularisation that acts in training mode only)."""
    t = config.train
    return {k: v for k, v in (("drop_rate", t.drop_rate), ("drop_path_rate", t.drop_path_rate)) if v}


def build_network(config: RunConfig, strategy: Strategy, data, train_targets):
    """The backbone (seeded), the task and the network cut for ``strategy``."""
    seed_everything(config.seed)
    weights = config.weights if strategy.pretrained else "scratch"
    backbone = create_backbone(config.backbone, weights=weights, num_classes=data.num_classes, **_model_options(config))
    task = task_of(data).for_data(data, train_targets, config)
    strategy.validate(len(task.groups(backbone)))
    net = task.build_network(backbone, strategy).to(memory_format=torch.channels_last)
    return backbone, task, net


def _history_csv(history: list[dict]) -> str:
    if not history:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    return buf.getvalue()


@dataclass
class TrialImages:
    """The images (and targets) of one dataset, decoded and resized once, shared by every trial of a study."""

    images: torch.Tensor  # uint8 N×C×S×S, only split members, in the order of ``index``
    targets: torch.Tensor | np.ndarray  # aligned with ``images``: labels, or uint8 N×S×S masks
    index: dict[int, int]  # sample index -> row of ``images``

    @classmethod
    def load(cls, prepared: PreparedData, size: int, progress=None) -> TrialImages:
        idx = np.concatenate([prepared.split.train, prepared.split.val, prepared.split.test])
        task = prepared.task
        bar = progress.add_task("loading images", total=len(idx)) if progress else None
        tick = (lambda: progress.advance(bar)) if progress else None
        images = load_images(prepared.data, idx, size, progress=tick)
        if bar is not None:
            progress.remove_task(bar)
        return cls(images, task.load_targets(prepared.data, idx, size), {int(i): r for r, i in enumerate(idx)})

    @functools.cached_property
    def fingerprint(self) -> str:
        return images_fingerprint(self.images)

    def rows(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | np.ndarray]:
        r = np.asarray([self.index[int(i)] for i in indices], dtype=np.int64)
        return self.images[torch.as_tensor(r)], self.targets[r]


@dataclass
class TrialOutcome:
    """What one trial produced, before anything is written."""

    strategy: Strategy
    task: Task
    fit: FitResult
    test_probs: np.ndarray
    test_targets: np.ndarray
    val_score: float
    test_metrics: dict
    net: TransferNet
    spec: dict
    device: str
    diverged: TrainingDiverged | None = None
    trainable_parameters: int = 0

    @property
    def weights_module(self) -> torch.nn.Module:
        """What a saved model holds (the timm model, or encoder + decoder)."""
        return self.net.weights_module


def cache_views(config: RunConfig) -> int:
    return config.cache_views if Augmentation.preset(config.augmentation).enabled else 1


def cache_key(config: RunConfig, backbone: Backbone, images: TrialImages) -> CacheKey:
    weights = config.weights
    if weights not in ("imagenet", "scratch") and Path(weights).is_file():
        stat = Path(weights).stat()
        weights = f"{Path(weights).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return CacheKey(backbone=config.backbone, weights=weights, input_size=config.input_size, mean=backbone.mean,
                    std=backbone.std, augmentation=config.augmentation, views=cache_views(config),
                    images=images.fingerprint)


def build_cache(config: RunConfig, prepared: PreparedData, images: TrialImages, strategies: list[Strategy], *,
                memory_budget: int | None = None, spill_dir: Path | None = None, progress=None,
                log=None) -> FrozenPrefixCache | None:
    """One pass of the pre-trained backbone over the images, keeping every boundary ``strategies`` read at."""
    cacheable = [s for s in strategies if s.kind in ("linear", "tune")]
    if not config.cache or not cacheable:
        return None
    backbone = create_backbone(config.backbone, weights=config.weights, num_classes=prepared.data.num_classes,
                               **_model_options(config))
    task = prepared.task
    groups, taps = task.layout(backbone)
    reads = {s.frozen_groups(len(groups)): task.cache_reads(s.frozen_groups(len(groups)), taps) for s in cacheable}
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


def run_trial(config: RunConfig, prepared: PreparedData, images: TrialImages, *, progress=None,
              on_best=None, cache: FrozenPrefixCache | None = None) -> TrialOutcome:
    """Train and test one network on already-loaded images. ``on_best(model, epoch, spec)`` sees each new best."""
    strategy = parse_strategy(config.strategy)
    device = resolve_device(config.device)
    data = prepared.data
    train_idx = training_subset(data, prepared.split.train, config.train_fraction, config.seed)
    check_split(data, DataSplit(train_idx, prepared.split.val, prepared.split.test, prepared.split.given))
    train_images, train_targets = images.rows(train_idx)
    backbone, task, net = build_network(config, strategy, data, train_targets)
    bs = config.train.batch_size
    k = net.num_frozen
    cached = (cache is not None and strategy.kind in ("linear", "tune")
              and cache.covers(cache_key(config, backbone, images), k))
    if cached:
        train_loader = cached_loader(cache.train_dataset(k, train_idx, config.seed), bs, shuffle=True, seed=config.seed)
        val_loader, test_loader = (
            cached_loader(cache.eval_dataset(k, idx), 2 * bs, shuffle=False, seed=0)
            for idx in (prepared.split.val, prepared.split.test)
        )
    else:
        aug = Augmentation.preset(config.augmentation)
        train_loader = _loader(train_images, train_targets, bs, transform=aug.build(), shuffle=True, seed=config.seed)
        val_loader = _loader(*images.rows(prepared.split.val), 2 * bs)
        test_loader = _loader(*images.rows(prepared.split.test), 2 * bs)
    spec = {
        **task.config(),
        "backbone": config.backbone,
        "weights": config.weights if strategy.pretrained else "scratch",
        "weights_description": backbone.weights_description,
        "strategy": strategy.name,
        "num_groups": len(task.groups(backbone)),
        "frozen_groups": net.num_frozen,
        "input_size": config.input_size,
        "input": "uint8 tensor B×C×H×W (C = 1 or 3), resized to input_size×input_size (bicubic, aspect not kept); "
        "the network normalises it itself",
        "mean": list(backbone.mean),
        "std": list(backbone.std),
    }
    callback = (lambda _net, epoch: on_best(net.weights_module, epoch, spec)) if on_best else None
    trainer = Trainer(task, config.train, device, progress=progress)
    diverged: TrainingDiverged | None = None
    try:
        fit = trainer.fit(net, train_loader, val_loader, cached=cached, on_best=callback)
    except TrainingDiverged as e:
        diverged, fit = e, FitResult(stopped="diverged")
    fit.cached = cached
    val_probs, val_targets, _ = trainer.predict(net, val_loader, cached=cached)
    test_probs, test_targets, _ = trainer.predict(net, test_loader, cached=cached)
    return TrialOutcome(
        strategy=strategy, task=task, fit=fit, test_probs=test_probs, test_targets=test_targets,
        val_score=task.score(val_probs, val_targets), test_metrics=task.evaluate(test_probs, test_targets, seed=config.seed),
        net=net, spec=spec, device=str(device), diverged=diverged,
        trainable_parameters=sum(p.numel() for p in net.suffix.parameters() if p.requires_grad),
    )


def _notice(message: str) -> None:
    from medtransfer.console import console

    console.print(message, highlight=False)


def train(config: RunConfig, out: str | Path, *, data: ImageSet | None = None,
          progress=None) -> RunResult:
    """Train one network as ``config`` says and write the run folder ``out``.

    The folder holds ``model.safetensors`` + ``model.json``, ``metrics.json``, ``history.csv``, ``curve.png`` and
    ``test_predictions.csv`` (per-image scores for segmentation). On a non-finite loss the best checkpoint is kept
    there and :class:`~medtransfer.errors.TrainingDiverged` is raised.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{out}: cannot create the run folder ({e.strerror})") from None
    started = time.perf_counter()
    resolve_device(config.device)  # a bad --device fails before the data is read
    prepared = prepare_data(config, data)
    images = TrialImages.load(prepared, config.input_size, progress)

    def on_best(model: torch.nn.Module, epoch: int, spec: dict) -> None:
        save_model(out, model, {**spec, "epoch": epoch})

    cache = build_cache(config, prepared, images, [parse_strategy(config.strategy)], progress=progress, log=_notice)
    outcome = run_trial(config, prepared, images, progress=progress, on_best=on_best, cache=cache)
    fit, task = outcome.fit, outcome.task
    metrics = {
        "task": task.name,
        "strategy": outcome.strategy.name,
        "seed": config.seed,
        "train_fraction": config.train_fraction,
        "test": outcome.test_metrics,
        "val": {task.selection_metric: outcome.val_score},
        "best_epoch": fit.best_epoch,
        "epochs_run": len(fit.history),
        "stopped": fit.stopped,
        "cached_prefix": fit.cached,
        "train_seconds": fit.seconds,
        "total_seconds": time.perf_counter() - started,
        "trainable_parameters": outcome.trainable_parameters,
        "device": outcome.device,
        "data": prepared.card(),
        "config": config.to_dict(),
        "environment": environment(),
    }
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write(out / "history.csv", _history_csv(fit.history))
    atomic_write(out / "test_predictions.csv", task.predictions_csv(prepared.split.test, outcome.test_targets, outcome.test_probs))
    if fit.history:
        plot_training_curve(fit.history, out / "curve.png", metric=task.selection_metric,
                            title=f"{prepared.data.name} · {config.backbone} · {outcome.strategy.name} · seed {config.seed}")
    if outcome.diverged is not None:
        raise outcome.diverged
    return RunResult(out=out, metrics=metrics, fit=fit)


def evaluate(run_dir: str | Path, data: str, *, split: str = "test", split_seed: int | None = None,
             device: str = "auto", source_options: dict | None = None) -> dict:
    """Score the model saved in ``run_dir`` on ``split`` ('train', 'val', 'test' or 'all') of ``data``."""
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split {split!r} must be train, val, test or all")
    dev = resolve_device(device)
    saved = load_model(run_dir, dev)
    images = read_data(data, task=saved.task.name, **(source_options or {}))
    if images.class_names != saved.task.class_names:
        raise DataError(
            f"{data}: classes {images.class_names} differ from the model's {saved.task.class_names}; "
            f"evaluate on data with the same classes"
        )
    if split == "all":
        idx = np.arange(len(images.samples))
    else:
        run_metrics = Path(run_dir) / "metrics.json"
        config = json.loads(run_metrics.read_text())["config"] if run_metrics.is_file() else {}
        seed = split_seed if split_seed is not None else config.get("split_seed", 0)
        test_fraction = config.get("test_fraction") or saved.task.test_fraction
        idx = getattr(make_split(images, seed=seed, test_fraction=test_fraction), split)
    x = load_images(images, idx, saved.input_size)
    loader = _loader(x, saved.task.load_targets(images, idx, saved.input_size), 64)
    trainer = Trainer(saved.task, TrainConfig(), dev)
    probs, targets, _ = trainer.predict(saved.net, loader)
    return {"data": str(data), "split": split, "n": int(len(idx)), "metrics": saved.task.evaluate(probs, targets)}
