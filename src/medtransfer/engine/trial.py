"""One trial: one network trained and tested on data already read, split and resized.

A study runs it for every (strategy, training fraction, seed); :func:`medtransfer.run.train` runs it once and writes a
run folder. Nothing here depends on the task: the :class:`~medtransfer.tasks.Task` brings its targets (how they are
loaded, batched, augmented and moved), its network head, loss and metric. Nothing here depends on the strategy
either beyond what :class:`~medtransfer.strategies.Strategy` says: which groups train, and which stages come first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medtransfer.backbones import Backbone
from medtransfer.cache import FrozenPrefixCache
from medtransfer.config import RunConfig
from medtransfer.engine.data import PreparedData, trial_subset
from medtransfer.engine.images import TrialImages
from medtransfer.engine.loaders import TrialBatches
from medtransfer.engine.network import build_network, network_spec
from medtransfer.engine.outcome import PausedTrial, TrialOutcome
from medtransfer.engine.stages import first_strategy, run_stages
from medtransfer.engine.testing import Predictions, calibrated_predictions, plain_predictions
from medtransfer.errors import TrainingDiverged
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy, parse_strategy
from medtransfer.tasks import Task
from medtransfer.training import FitResult, Trainer, resolve_device
from medtransfer.training.precision import resolve_precision


@dataclass
class _Trial:
    """One trial's parts, as :func:`run_trial` builds them and hands them to its steps."""

    config: RunConfig
    strategy: Strategy
    device: torch.device
    backbone: Backbone
    task: Task
    trainer: Trainer
    batches: TrialBatches


def run_trial(config: RunConfig, prepared: PreparedData, images: TrialImages, *, progress=None,
              on_best=None, cache: FrozenPrefixCache | None = None, on_epoch=None,
              resume: dict | None = None, train: bool = True) -> TrialOutcome:
    """Train and test one network on already-loaded images. ``on_best(model, epoch, spec)`` sees each new best;
    ``on_epoch`` is the trainer's (:meth:`~medtransfer.training.Trainer.fit`), for the strategy's own stage only.

    A trial that ``on_epoch`` paused is not tested (its validation score is its best epoch's, its test metrics
    empty): :meth:`TrialOutcome.resume_state` is what ``resume`` takes to carry it on, from the paused epoch, in the
    precision it trained in (without the strategy's earlier stages again); with ``train`` False the paused trial is
    trained no further but tested on its best weights so far, as a run that ends at its pause."""
    paused = PausedTrial.from_dict(resume) if resume is not None else None
    trial, net = _set_up(config, prepared, images, cache, progress, resuming=paused is not None)
    stages = paused.stages if paused is not None else {}
    if paused is None:
        net, stages = run_stages(trial.strategy, net, trial.backbone, trial.task, trial.trainer, trial.batches)
    cached = trial.batches.reads_cache(trial.strategy, trial.backbone, net)
    loaders = trial.batches.loaders(net.frozen_groups, cached)
    spec = {**network_spec(config, trial.strategy, trial.backbone, trial.task, net, int(images.images.shape[1])),
            **stages}
    _settle_precision(trial, net, cached, paused)
    spec["precision"] = trial.trainer.precision.name
    spec["fold_batchnorm"], spec["fast_depthwise"] = config.fold_batchnorm, config.fast_depthwise
    fit, diverged = _train(trial, net, loaders, cached, spec, on_best, on_epoch, paused, train)
    if fit.stopped == "paused":  # tested only if it ends here (``train`` False), never on its way to the end
        return _outcome(trial, net, fit, spec, None, None)
    spec["depthwise_grouped"] = sorted(trial.trainer.depthwise.grouped)  # shapes whose weight gradient was grouped
    return _outcome(trial, net, fit, spec, diverged, _predictions(trial, net, loaders, cached, spec, diverged))


def _set_up(config: RunConfig, prepared: PreparedData, images: TrialImages, cache: FrozenPrefixCache | None,
            progress, *, resuming: bool) -> tuple[_Trial, TransferNet]:
    """The trial's parts, and its first network: cut for the strategy's first stage, unless it resumes."""
    strategy = parse_strategy(config.strategy)
    device = resolve_device(config.device)
    train_idx = trial_subset(config, prepared)
    train_targets = images.task.codec.take(images.targets, images.positions(train_idx))
    backbone, task, net = build_network(config, first_strategy(strategy, resuming), prepared.data, train_targets,
                                        prepared.task)
    trainer = Trainer(task, config.train, device, progress=progress, precision=config.precision,
                      fold_batchnorm=config.fold_batchnorm, fast_depthwise=config.fast_depthwise)
    batches = TrialBatches(config, prepared, images, task, train_idx, cache)
    return _Trial(config, strategy, device, backbone, task, trainer, batches), net


def _settle_precision(trial: _Trial, net: TransferNet, cached: bool, paused: PausedTrial | None) -> None:
    """The precision the strategy's own stage trains in (its earlier stages trained in the one resolved before
    this); a resumed trial goes on in the precision it started in."""
    if paused is not None:
        trial.trainer.precision = resolve_precision(paused.precision, trial.device)
        return
    config = trial.config

    def first_batch():  # from a loader of its own: the training loader's random state stays untouched
        return next(iter(trial.batches.loaders(net.frozen_groups, cached)[0]))

    trial.trainer.settle_precision(net, first_batch, cached=cached,
                                   case=f"{config.backbone} · {trial.strategy.name} · {trial.task.name} · "
                                        f"{config.train.batch_size}×{config.input_size} px · "
                                        f"depthwise {config.fast_depthwise}")


def _train(trial: _Trial, net: TransferNet, loaders, cached: bool, spec: dict, on_best, on_epoch,
           paused: PausedTrial | None, train: bool) -> tuple[FitResult, TrainingDiverged | None]:
    """The strategy's own stage trained (or a paused one restored as it stands): the fit, and the divergence if the
    loss diverged. ``on_best`` sees the spec as it stands when it is called."""
    callback = (lambda _net, epoch: on_best(net.weights_module, epoch, spec)) if on_best else None
    try:
        if paused is not None and not train:
            fit = trial.trainer.restore(net, paused.fit)
        else:
            fit = trial.trainer.fit(net, loaders[0], loaders[1], cached=cached, on_best=callback, on_epoch=on_epoch,
                                    resume=paused.fit if paused is not None else None)
    except TrainingDiverged as e:
        fit, diverged = FitResult(stopped="diverged"), e
    else:
        diverged = None
    fit.cached = cached
    return fit, diverged


def _predictions(trial: _Trial, net: TransferNet, loaders, cached: bool, spec: dict,
                 diverged: TrainingDiverged | None) -> Predictions:
    """Validation and test predictions; a cached trial's from the images through the whole network, as a delivered
    model's are. Calibrated on validation where the task calibrates (and the run did not diverge)."""
    batches, split, task = trial.batches, trial.batches.prepared.split, trial.task
    val_loader, test_loader = loaders[1], loaders[2]
    if cached:
        val_loader, test_loader = batches.evaluation(split.val), batches.evaluation(split.test)
    if task.scorer.calibrates and diverged is None:
        return calibrated_predictions(trial.trainer, task, net, val_loader, test_loader, spec)
    return plain_predictions(trial.trainer, net, val_loader, test_loader, batches.prepared.data, split.test)


def _outcome(trial: _Trial, net: TransferNet, fit: FitResult, spec: dict, diverged: TrainingDiverged | None,
             predictions: Predictions | None) -> TrialOutcome:
    """The outcome; a paused trial's (no ``predictions``) is not tested: its validation score is its best epoch's."""
    task = trial.task
    trainable = sum(p.numel() for p in net.suffix.parameters() if p.requires_grad)
    common = dict(strategy=trial.strategy, task=task, fit=fit, net=net, spec=spec, device=str(trial.device),
                  trainable_parameters=trainable, train_idx=trial.batches.train_idx)
    if predictions is None:
        return TrialOutcome(test_predictions=None, test_targets=None, val_predictions=None, val_targets=None,
                            val_score=fit.best_score, test_metrics={}, **common)
    p = predictions
    return TrialOutcome(
        test_predictions=p.test, test_targets=p.test_targets, val_predictions=p.val, val_targets=p.val_targets,
        calibration=p.calibration, uncalibrated_test_predictions=p.uncalibrated_test,
        val_score=task.scorer.score(p.val, p.val_targets),
        test_metrics=task.scorer.evaluate(p.test, p.test_targets, seed=trial.config.seed),
        diverged=diverged, **common,
    )
