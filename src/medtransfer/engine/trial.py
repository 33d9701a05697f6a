"""The trial engine: one network trained and tested on data already read, split and resized.

A study runs it for every (strategy, training fraction, seed); :func:`medtransfer.run.train` runs it once and writes a
run folder. Nothing here depends on the task: the :class:`~medtransfer.tasks.Task` brings its targets (how they are
loaded, batched, augmented and moved), its network head, loss and metric.
"""

from __future__ import annotations

import functools
import platform
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from medtransfer.backbones import Backbone, create_backbone
from medtransfer.cache import CacheKey, FrozenPrefixCache, cached_loader, images_fingerprint
from medtransfer.config import RunConfig, Settings
from medtransfer.data import Augmentation, ImageSet, ImageTensorDataset, load_images, make_split
from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.training.calibration import CalibrationCheck
from medtransfer.data.splits import DataSplit, check_split, training_subset
from medtransfer.errors import ConfigError, TrainingDiverged
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy, parse_strategy
from medtransfer.tasks import Task, read_data, resolve_task
from medtransfer.tasks.option_failures import network_from_options
from medtransfer.tasks.registry import task_for_data
from medtransfer.training import FitResult, Trainer, resolve_device
from medtransfer.training.precision import resolve_precision
from medtransfer.training.state import TrainState


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
    """A source read for its task and split, with the training subset for one (fraction, seed)."""

    data: ImageSet
    task: type[Task]
    split: DataSplit
    train_idx: np.ndarray

    def card(self) -> dict:
        patients: dict[str, int] = {}
        for s in self.data.samples:
            if s.patient_id:
                patients[s.patient_id] = patients.get(s.patient_id, 0) + 1
        per = sorted(patients.values())
        return {
            "name": self.data.name,
            "task": self.task.name,
            "modality": self.data.modality,
            "classes": self.data.class_names,
            "split_given": self.split.given,
            "counts": {"train_used": len(self.train_idx), **self.split.counts()},
            **({"patients": {"count": len(per), "images_per_patient": [per[0], per[len(per) // 2], per[-1]]}}
               if per else {}),
            **({"notices": list(self.data.notices)} if self.data.notices else {}),
            **self.task.describe(self.data, {"train_used": self.train_idx, "val": self.split.val, "test": self.split.test}),
        }


def prepare_data(config: RunConfig, data: ImageSet | None = None) -> PreparedData:
    """Read ``config.data`` for its task (or take ``data`` as read), split it and draw the training subset."""
    if data is None:
        task, data = read_data(config.data, task=config.task, **config.source_options)
    else:
        task = task_for_data(data) if config.task == "auto" else resolve_task(config.task, config.data)
        if not isinstance(data, task.data_type):
            raise ConfigError(f"{config.data}: the task is {task.name}, but the data are laid out for another task")
    task.options(config.task_options)  # the options were given for the task the data turned out to be for
    split = make_split(data, seed=config.split_seed, test_fraction=config.test_fraction or task.test_fraction)
    task.check_split(data, split)
    train_idx = training_subset(data, split.train, config.train_fraction, config.seed)
    check_split(data, DataSplit(train_idx, split.val, split.test, split.given))
    return PreparedData(data, task, split, train_idx)


def image_loader(task: Task, images: torch.Tensor, targets, batch_size: int, *, augment=None,
                 shuffle=False, seed=0) -> DataLoader:
    """Batches of ``(images, targets)``; the task batches the targets. ``augment(image, target)`` per draw."""
    from torch.utils.data import default_collate

    g = torch.Generator().manual_seed(seed)
    ds = ImageTensorDataset(images, targets, augment)

    def collate(batch):
        return default_collate([x for x, _ in batch]), task.collate([y for _, y in batch])

    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, collate_fn=collate,
                      drop_last=shuffle and len(ds) > batch_size)


def model_options(config: Settings) -> dict:
    """Architecture options for ``timm.create_model`` (regularisation that acts in training mode only)."""
    t = config.train
    return {k: v for k, v in (("drop_rate", t.drop_rate), ("drop_path_rate", t.drop_path_rate)) if v}


def build_network(config: RunConfig, strategy: Strategy, data: ImageSet, train_targets,
                  task_type: type[Task] | None = None):
    """The backbone (seeded), the task (``task_type``, or the one that reads data like ``data``) and the network cut
    for ``strategy``."""
    seed_everything(config.seed)
    weights = config.weights if strategy.pretrained else "scratch"
    backbone = create_backbone(config.backbone, weights=weights, num_classes=data.num_classes, **model_options(config))
    task = (task_type or task_for_data(data)).for_data(data, train_targets, config)
    strategy.validate(len(task.groups(backbone)))
    with network_from_options(config.task_options, task.name):
        net = task.build_network(backbone, strategy).to(memory_format=torch.channels_last)
    return backbone, task, net


@dataclass
class TrialImages:
    """The images (and targets) of one dataset, decoded and resized once, shared by every trial of a study."""

    images: torch.Tensor  # uint8 N×C×S×S, only split members, in the order of ``index``
    targets: object  # one item per image, aligned with ``images``, in the task's kind of sequence
    index: dict[int, int]  # sample index -> row of ``images``
    task: type[Task] = Task

    @classmethod
    def load(cls, prepared: PreparedData, size: int, progress=None) -> TrialImages:
        idx = np.concatenate([prepared.split.train, prepared.split.val, prepared.split.test])
        bar = progress.add_task("loading images", total=len(idx)) if progress else None
        tick = (lambda: progress.advance(bar)) if progress else None
        images = load_images(prepared.data, idx, size, progress=tick)
        if bar is not None:
            progress.remove_task(bar)
        targets = prepared.task.load_targets(prepared.data, idx, size)
        return cls(images, targets, {int(i): r for r, i in enumerate(idx)}, prepared.task)

    @functools.cached_property
    def fingerprint(self) -> str:
        return images_fingerprint(self.images)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray([self.index[int(i)] for i in indices], dtype=np.int64)

    def rows(self, indices: np.ndarray):
        r = self.positions(indices)
        return self.images[torch.as_tensor(r)], self.task.take(self.targets, r)


def test_scoring(trainer: Trainer, net: TransferNet, loader, data, indices: np.ndarray):
    """(predictions, targets) of ``data.samples[indices]`` (the order of ``loader``) as the test metrics score
    them: at each image's own size when the task scores there (:meth:`~medtransfer.tasks.Task.own_size_targets`),
    else at the input size."""
    own = trainer.task.own_size_targets(data, indices)
    sizes = None if own is None else [np.shape(t)[-2:] for t in own]
    predictions, targets, _ = trainer.predict(net, loader, sizes=sizes)
    return predictions, (targets if own is None else own)


@dataclass
class TrialOutcome:
    """What one trial produced, before anything is written."""

    strategy: Strategy
    task: Task
    fit: FitResult
    test_predictions: object
    test_targets: object
    val_predictions: object
    val_targets: object
    val_score: float
    test_metrics: dict
    net: TransferNet
    spec: dict
    device: str
    diverged: TrainingDiverged | None = None
    trainable_parameters: int = 0
    calibration: CalibrationCheck | None = None  # summary: the fit on validation, the ECE on test
    uncalibrated_test_predictions: object = None

    def resume_state(self) -> dict | None:
        """A paused trial's state, for ``run_trial(..., resume=...)`` (None unless the trial paused)."""
        if self.fit.state is None:
            return None
        return {"fit": self.fit.state.to_dict(), "precision": self.spec["precision"],
                "linear_probe": self.spec.get("linear_probe")}

    @property
    def weights_module(self) -> torch.nn.Module:
        """What a saved model holds (the timm model, or encoder + decoder)."""
        return self.net.weights_module

    def case_columns(self) -> dict:
        """What the study stores per test case."""
        return self.task.case_columns(self.test_predictions, self.test_targets)

    def val_case_columns(self) -> dict:
        """The same per validation case (the recommendation's uncertainty is computed from them)."""
        return self.task.case_columns(self.val_predictions, self.val_targets)


def data_fingerprint(prepared: PreparedData, images: TrialImages, source: str | None = None) -> DataFingerprint:
    """The fingerprint of what a run or a study read: every sample's decoded pixels, target and split."""
    split_of = {int(i): name for name in ("train", "val", "test") for i in getattr(prepared.split, name)}
    idx = np.asarray(sorted(images.index), dtype=np.int64)
    rows = images.positions(idx)
    targets = images.task.take(images.targets, rows)
    return DataFingerprint.of([prepared.data.samples[int(i)].ref for i in idx], source or prepared.data.name,
                              images.images[torch.as_tensor(rows)], targets, [split_of[int(i)] for i in idx])


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


def _loaders(config: RunConfig, prepared: PreparedData, images: TrialImages, task: Task,
             cache: FrozenPrefixCache | None, k: int, train_idx: np.ndarray):
    """(train, validation, test) batches: cached prefix outputs at boundary ``k`` when ``cache`` is given, else
    the images (the training ones augmented)."""
    bs = config.train.batch_size
    if cache is not None:
        train = cached_loader(cache.train_dataset(k, train_idx, config.seed, task.collate), bs, shuffle=True,
                              seed=config.seed)
        val, test = (cached_loader(cache.eval_dataset(k, idx, task.collate), 2 * bs, shuffle=False, seed=0)
                     for idx in (prepared.split.val, prepared.split.test))
        return train, val, test
    augment = task.augment(Augmentation.preset(config.augmentation).build())
    train = image_loader(task, *images.rows(train_idx), bs, augment=augment, shuffle=True, seed=config.seed)
    return (train, image_loader(task, *images.rows(prepared.split.val), 2 * bs),
            image_loader(task, *images.rows(prepared.split.test), 2 * bs))


def run_trial(config: RunConfig, prepared: PreparedData, images: TrialImages, *, progress=None,
              on_best=None, cache: FrozenPrefixCache | None = None, on_epoch=None,
              resume: dict | None = None, train: bool = True) -> TrialOutcome:
    """Train and test one network on already-loaded images. ``on_best(model, epoch, spec)`` sees each new best;
    ``on_epoch`` is the trainer's (:meth:`~medtransfer.training.Trainer.fit`), for the fine-tuning stage only.

    A trial that ``on_epoch`` paused is not tested (its validation score is its best epoch's, its test metrics
    empty): :meth:`TrialOutcome.resume_state` is what ``resume`` takes to carry it on, from the paused epoch, in the
    precision it trained in (lp-ft: without its first stage again); with ``train`` False the paused trial is
    trained no further but tested on its best weights so far, as a run that ends at its pause."""
    strategy = parse_strategy(config.strategy)
    device = resolve_device(config.device)
    data = prepared.data
    train_idx = training_subset(data, prepared.split.train, config.train_fraction, config.seed)
    check_split(data, DataSplit(train_idx, prepared.split.val, prepared.split.test, prepared.split.given))
    train_targets = images.task.take(images.targets, images.positions(train_idx))
    two_stage = strategy.kind == "lp-ft" and resume is None  # stage 1: the head on the frozen backbone; 2 from it
    backbone, task, net = build_network(config, Strategy("linear") if two_stage else strategy, data, train_targets,
                                        prepared.task)
    bs = config.train.batch_size
    trainer = Trainer(task, config.train, device, progress=progress, precision=config.precision,
                      fold_batchnorm=config.fold_batchnorm, fast_depthwise=config.fast_depthwise)
    probe = None
    if two_stage:
        probe_net = net
        probe_cached = cache is not None and cache.covers(cache_key(config, backbone, images), probe_net.num_frozen)
        probe_train, probe_val, _ = _loaders(config, prepared, images, task, cache if probe_cached else None,
                                             probe_net.num_frozen, train_idx)
        probe = trainer.fit(probe_net, probe_train, probe_val, cached=probe_cached)
        net = task.build_network(backbone, strategy).to(memory_format=torch.channels_last)
        if net.suffix.head is not probe_net.suffix.head:
            net.suffix.head.load_state_dict(probe_net.suffix.head.state_dict())
    k = net.num_frozen
    cached = cache is not None and strategy.cacheable and cache.covers(cache_key(config, backbone, images), k)
    train_loader, val_loader, test_loader = _loaders(config, prepared, images, task, cache if cached else None, k,
                                                     train_idx)
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
        "channels": int(images.images.shape[1]),  # 1: gray images (colour ones are converted), 3: RGB
        **({"window": list(config.source_options["window"])} if config.source_options.get("window") else {}),
        **({"axis": int(config.source_options["axis"])} if config.source_options.get("axis") is not None else {}),
    }
    if probe is not None:
        spec["linear_probe"] = {"epochs": len(probe.history), "best_epoch": probe.best_epoch,
                                f"val_{task.metric.name}": probe.best_score, "seconds": probe.seconds}
    elif resume is not None and resume.get("linear_probe"):
        spec["linear_probe"] = resume["linear_probe"]
    callback = (lambda _net, epoch: on_best(net.weights_module, epoch, spec)) if on_best else None

    def first_batch():  # from a loader of its own: the training loader's random state stays untouched
        return next(iter(_loaders(config, prepared, images, task, cache if cached else None, k, train_idx)[0]))

    # lp-ft's first stage (a head on cached features) trained in the precision resolved before this
    if resume is None:
        trainer.settle_precision(net, first_batch, cached=cached,
                                 case=f"{config.backbone} · {strategy.name} · {type(task).__name__} · "
                                      f"{bs}×{config.input_size} px · depthwise {config.fast_depthwise}")
    else:  # a resumed run goes on in the precision it started in
        trainer.precision = resolve_precision(resume["precision"], device)
    spec["precision"] = trainer.precision.name
    spec["fold_batchnorm"], spec["fast_depthwise"] = config.fold_batchnorm, config.fast_depthwise
    diverged: TrainingDiverged | None = None
    try:
        if resume is not None and not train:
            fit = trainer.restore(net, TrainState.from_dict(resume["fit"]))
        else:
            fit = trainer.fit(net, train_loader, val_loader, cached=cached, on_best=callback, on_epoch=on_epoch,
                              resume=TrainState.from_dict(resume["fit"]) if resume is not None else None)
    except TrainingDiverged as e:
        diverged, fit = e, FitResult(stopped="diverged")
    fit.cached = cached
    trainable = sum(p.numel() for p in net.suffix.parameters() if p.requires_grad)
    if fit.stopped == "paused":  # tested only if it ends here (``train`` False), never on its way to the end
        return TrialOutcome(strategy=strategy, task=task, fit=fit, test_predictions=None, test_targets=None,
                            val_predictions=None, val_targets=None, val_score=fit.best_score, test_metrics={},
                            net=net, spec=spec, device=str(device), trainable_parameters=trainable)
    spec["depthwise_grouped"] = sorted(trainer.depthwise.grouped)  # shapes whose weight gradient was grouped
    if cached:  # the final predictions come from the images through the whole network, as a delivered model's do
        val_loader = image_loader(task, *images.rows(prepared.split.val), 2 * bs)
        test_loader = image_loader(task, *images.rows(prepared.split.test), 2 * bs)
    calibration, uncalibrated = None, None
    if task.calibrates and diverged is None:
        # one pass each: the logits, then the task's predictions of them before and after the fit on validation
        val_outputs, val_targets, _ = trainer.predict(net, val_loader, raw=True)
        test_outputs, test_targets, _ = trainer.predict(net, test_loader, raw=True)
        uncalibrated = task.predict(torch.as_tensor(test_outputs)).numpy()
        fitted = task.calibrate(val_outputs, val_targets)
        check = task.calibration_check(test_outputs, test_targets)
        calibration = CalibrationCheck({**fitted, **{f"test_{k}": v for k, v in check.summary.items()}}, check.curves)
        val_predictions = task.predict(torch.as_tensor(val_outputs)).numpy()
        test_predictions = task.predict(torch.as_tensor(test_outputs)).numpy()
        spec.update(task.config(), calibration=calibration.summary)
    else:
        val_predictions, val_targets, _ = trainer.predict(net, val_loader)
        test_predictions, test_targets = test_scoring(trainer, net, test_loader, prepared.data, prepared.split.test)
    return TrialOutcome(
        strategy=strategy, task=task, fit=fit, test_predictions=test_predictions, test_targets=test_targets,
        val_predictions=val_predictions, val_targets=val_targets,
        calibration=calibration, uncalibrated_test_predictions=uncalibrated,
        val_score=task.score(val_predictions, val_targets),
        test_metrics=task.evaluate(test_predictions, test_targets, seed=config.seed),
        net=net, spec=spec, device=str(device), diverged=diverged,
        trainable_parameters=trainable,
    )
