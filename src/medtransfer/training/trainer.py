"""The training loop over (prefix output, target) batches.

Only the network's trainable suffix is optimised. Batches come either as images, which go through the frozen prefix
first, or as the prefix's outputs already computed (a cache), which go straight to the suffix. Validation after every
epoch drives early stopping; the best suffix weights are kept and restored at the end.

The loop's pieces live in modules of their own: the optimiser and schedule (:mod:`~medtransfer.training.optimizer`),
one step of them with the gradient scaler and the weight average (:mod:`~medtransfer.training.update`), the best
weights (:mod:`~medtransfer.training.best`), early stopping (:mod:`~medtransfer.training.stopping`), the divergence
check, the progress bar, and the paused run's state (:mod:`~medtransfer.training.state`).

A run can be *paused* after an epoch (``on_epoch`` returns ``{"pause": True}``): :attr:`FitResult.state` then holds a
:class:`~medtransfer.training.state.TrainState`, and ``fit(..., resume=state)`` carries on from the next epoch exactly
as the uninterrupted run would. Successive halving pauses every trial at a rung and resumes only the better ones.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from medtransfer.networks import TransferNet
from medtransfer.training.best import BestWeights
from medtransfer.training.config import TrainConfig
from medtransfer.training.depthwise import Swapped, fast_depthwise
from medtransfer.training.divergence import check_finite
from medtransfer.training.optimizer import build_optimizer
from medtransfer.training.precision import resolve_precision, settle_cpu_precision
from medtransfer.training.progress import EpochBar
from medtransfer.training.state import TrainState
from medtransfer.training.stopping import EarlyStopping
from medtransfer.training.update import Update

if TYPE_CHECKING:  # the trainer calls a task's loss and scoring; tasks sit above training
    from medtransfer.tasks.base import Task

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FitResult:
    """What training produced: the per-epoch curve and the best epoch (1-based) by the validation score (the task
    metric's direction decides what "best" is)."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    epochs: int = 0  # the run's budget in epochs (TrainConfig.epochs_for its training set)
    stopped: str = "completed"  # completed | early_stopped | pruned | paused | diverged
    seconds: float = 0.0
    cached: bool = False  # trained on cached prefix outputs
    state: TrainState | None = None  # a paused run: what ``fit(..., resume=state)`` continues from


@dataclass
class _Run:
    """One fit's pieces, handed from the loop to its steps."""

    net: TransferNet
    train: Batches
    val: Batches
    cached: bool
    epochs: int
    update: Update
    best: BestWeights
    stopping: EarlyStopping
    bar: EpochBar | None = None


class Trainer:
    """Fits a :class:`TransferNet`'s suffix for a :class:`Task` on a device, with an optional rich progress bar."""

    def __init__(self, task: Task, config: TrainConfig, device: torch.device, progress=None,
                 precision: str = "fp32", fold_batchnorm: bool = True, fast_depthwise: bool | str = "auto"):
        self.task = task
        self.config = config
        self.device = device
        self.progress = progress
        self.requested_precision = precision
        self.precision = resolve_precision(precision, device)
        self.fold_batchnorm = fold_batchnorm
        self.fast_depthwise = fast_depthwise
        self.depthwise = Swapped()  # the last fit's depthwise layers: how many swapped, which shapes took the grouped form
        self._fitting = False
        self._folded_prefix = None  # during fit: the prefix with BatchNorm folded, made at the first batch

    def settle_precision(self, net: TransferNet, batch: Callable[[], tuple], *, cached: bool, case: str) -> None:
        """Precision ``auto`` on a CPU with bf16 units: train in whichever of float32 and bf16 is the faster for
        this network here (:func:`~medtransfer.training.precision.settle_cpu_precision`; ``case`` names the
        network and its input for the remembered verdict). Only the trainable suffix is timed: the frozen layers
        run in float32 whatever the precision (so that a cached and an uncached trial compute the same), and a
        cached and an uncached trial of one strategy share the verdict. The timed steps run on a copy of the
        network and on ``batch()``, a training batch from a loader of its own, and torch's random state is put back
        after them: the network, its BatchNorm statistics and the order and augmentation of the training batches
        are as they were."""
        if self.requested_precision != "auto" or self.device.type != "cpu":
            return
        probe: dict = {}
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=[]))  # dropout and drop-path draw in the timed steps

            def step(precision) -> None:
                if not probe:  # made at the first timing only: a remembered verdict needs no copy and no batch
                    probe["net"] = copy.deepcopy(net).to(self.device).train()
                    probe["optimizer"] = build_optimizer(probe["net"], self.config)  # a whole step, as fit takes it
                    stack.enter_context(fast_depthwise(probe["net"].suffix, self.fast_depthwise))  # as fit runs it
                    x, y = batch()
                    with torch.no_grad():  # the suffix's input, as the cache holds it or the prefix makes it
                        probe["batch"] = self._inputs(probe["net"], x, cached), self.task.codec.to_device(y, self.device)
                copied, (inputs, targets) = probe["net"], probe["batch"]
                with precision.autocast():
                    loss = self.task.scorer.loss(copied.suffix(inputs), targets)
                loss.backward()
                probe["optimizer"].step()
                probe["optimizer"].zero_grad(set_to_none=True)

            self.precision = settle_cpu_precision(self.requested_precision, self.device, case, step)

    # -- one pass ---------------------------------------------------------------------------------------
    def _inputs(self, net: TransferNet, x, cached: bool):
        """A batch of images through the frozen prefix, or cached prefix outputs (a tensor or a tuple) as they are."""
        if isinstance(x, (tuple, list)):  # the default collate turns a tuple into a list
            return tuple(t.to(self.device, non_blocking=True) for t in x)
        x = x.to(self.device, non_blocking=True)
        if cached:
            return x
        if self._fitting and self.fold_batchnorm:  # in training, the prefix with its BatchNorms folded (one pass, not two)
            if self._folded_prefix is None:
                self._folded_prefix = net.prefix.folded(x)
            return self._folded_prefix(x)
        return net.prefix(x)

    @torch.no_grad()
    def predict(self, net: TransferNet, batches: Batches, *, cached: bool = False, suffix: nn.Module | None = None,
                raw: bool = False, sizes=None):
        """(predictions, targets, mean loss) over ``batches``, in eval mode; the task gathers the predictions and
        the targets of all batches. With ``raw`` the predictions are the network's outputs (logits), not the task's
        :meth:`~medtransfer.tasks.Task.predict` of them; with ``sizes`` (each image's own ``(h, w)``, in the order
        of ``batches``) they are its :meth:`~medtransfer.tasks.Task.predict_at` them."""
        return self._predict(net, batches, [suffix or net.suffix], cached=cached, raw=raw, sizes=sizes)[0]

    @torch.no_grad()
    def _predict(self, net: TransferNet, batches: Batches, suffixes: list[nn.Module], *, cached: bool,
                 raw: bool = False, sizes=None) -> list[tuple]:
        """:meth:`predict` for several suffixes at once (the weight average and the live weights): each batch goes
        through the frozen prefix once, then through every suffix (which, as with cached inputs, must not change
        what they are given)."""
        was = [s.training for s in suffixes]
        for s in suffixes:
            s.eval()
        predictions, losses = [[] for _ in suffixes], [0.0] * len(suffixes)
        targets, n = [], 0
        try:
            for x, y in batches:
                inputs, on_device = self._inputs(net, x, cached), self.task.codec.to_device(y, self.device)
                n += len(y)
                for j, suffix in enumerate(suffixes):
                    out = suffix(inputs)
                    losses[j] += float(self.task.scorer.loss(out, on_device)) * len(y)
                    if raw:
                        predictions[j].append(out.detach().float().cpu())
                    elif sizes is not None:
                        predictions[j].append(self.task.scorer.predict_at(out, sizes[n - len(y):n]))
                    else:
                        predictions[j].append(self.task.scorer.predict(out))
                targets.append(y)
        finally:
            for suffix, mode in zip(suffixes, was):
                suffix.train(mode)
        gathered = self.task.codec.gather(targets)
        return [(self.task.codec.gather(p), gathered, loss / max(n, 1)) for p, loss in zip(predictions, losses)]

    # -- the loop ---------------------------------------------------------------------------------------
    def fit(
        self,
        net: TransferNet,
        train: Batches,
        val: Batches,
        *,
        cached: bool = False,
        on_best: Callable[[TransferNet, int], None] | None = None,
        on_epoch: Callable[[int, int, float], dict] | None = None,
        resume: TrainState | None = None,
    ) -> FitResult:
        """Train ``net.suffix``; on return it holds the best epoch's weights. Raises :class:`TrainingDiverged`.

        ``on_epoch(epoch, epochs, validation score)``, after each epoch, returns fields for the epoch's record; one
        with ``pause`` True pauses the run there (``stopped = "paused"``, :attr:`FitResult.state` set; the field
        itself is not recorded). ``resume``: a paused run's state, to continue from its next epoch."""
        net.to(self.device)
        steps_per_epoch = len(train)  # type: ignore[arg-type]
        epochs = self.config.epochs_for(steps_per_epoch)
        run = _Run(net, train, val, cached, epochs,
                   Update.build(net, self.config, self.device, self.precision, epochs, steps_per_epoch),
                   BestWeights(self.task.scorer.metric, on_best),
                   EarlyStopping(self.config.patience, self.config.earliest_stop(epochs)))
        result = FitResult(best_score=run.best.score, epochs=epochs)
        if resume is not None:
            result.history = resume.restore(epochs, net, run.update, run.best, run.stopping, train)
        first = 1 if resume is None else resume.epoch + 1
        run.bar = EpochBar(self.progress, epochs, steps_per_epoch, done_epochs=first - 1)
        start = time.perf_counter()
        self._fitting, self._folded_prefix = True, None
        try:
            with fast_depthwise(net.suffix, self.fast_depthwise) as self.depthwise:
                for epoch in range(first, epochs + 1):
                    pause = self._epoch(run, epoch, on_epoch, result.history)
                    result.best_epoch, result.best_score = run.best.epoch, run.best.score
                    if run.stopping.should_stop(epoch):
                        result.stopped = "early_stopped"
                        break
                    if pause and epoch < epochs:
                        result.stopped = "paused"
                        result.state = TrainState.capture(epoch, epochs, net, run.update, run.best, run.stopping,
                                                          result.history, train)
                        break
        finally:
            self._fitting, self._folded_prefix = False, None
            run.bar.close()
            result.seconds = time.perf_counter() - start
        run.best.restore(net)
        return result

    def _epoch(self, run: _Run, epoch: int, on_epoch, history: list[dict]) -> bool:
        """Train and validate one epoch, record it in ``history`` and keep its weights if they are the best yet;
        True if ``on_epoch`` asks to pause after it."""
        t0 = time.perf_counter()
        train_loss, n, train_seconds = self._train_epoch(run, epoch)
        evaluated, score, val_loss, scores = self._validate(run.net, run.val, run.cached, run.update.ema)
        metric = self.task.scorer.metric
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            f"val_{metric.name}": score,
            **scores,
            "lr": run.update.base_lr(self.config.head_lr_multiplier),
            "seconds": time.perf_counter() - t0,
            "train_seconds": train_seconds,
            "train_images": n,
        }
        verdict = dict(on_epoch(epoch, run.epochs, float(score))) if on_epoch is not None else {}
        pause = verdict.pop("pause", False)
        record.update(verdict)
        history.append(record)
        run.stopping.update(run.best.offer(run.net, evaluated, epoch, score))
        run.bar.epoch_done(epoch, train_loss, metric.label, score, run.best.score, run.best.epoch)
        return pause

    def _train_epoch(self, run: _Run, epoch: int) -> tuple[float, int, float]:
        """One pass over the training batches: (mean loss, images seen, seconds)."""
        net = run.net
        net.train()  # the prefix stays in eval mode whatever is asked of it
        total, n = 0.0, 0
        started = time.perf_counter()
        for x, y in run.train:
            inputs = self._inputs(net, x, run.cached)  # the frozen layers in float32, as the cache holds them
            with self.precision.autocast():
                out = net.suffix(inputs)
                loss = self.task.scorer.loss(out, self.task.codec.to_device(y, self.device))
            check_finite(loss, epoch, net, run.best)
            run.update.step(loss, net.suffix)
            total += float(loss.detach()) * len(y)
            n += len(y)
            run.bar.step(epoch, total / n)
        return total / max(n, 1), n, time.perf_counter() - started

    def restore(self, net: TransferNet, state: TrainState) -> FitResult:
        """A paused run (:attr:`FitResult.state`) as it stands at its pause, trained no further: ``net.suffix`` holds
        its best weights so far and the result its epoch records (``stopped = "pruned"``: the run ends there)."""
        net.to(self.device)
        net.suffix.load_state_dict(state.best_state)
        return FitResult(history=copy.deepcopy(state.history), best_epoch=state.best_epoch,
                         best_score=state.best_score, epochs=state.epochs, stopped="pruned")

    def _validate(self, net: TransferNet, val: Batches, cached: bool, ema):
        """The epoch's validation: (the weights kept as this epoch's, their score, their loss, extra record fields).

        With a weight EMA both the average and the live weights are scored and the better one is this epoch's
        candidate. On short runs of a few dozen steps the average still carries the first steps' weights and
        BatchNorm statistics and can score far below the live network (seen: a validation AUC of 0.0 for the
        average against 1.0 for the live weights, in every epoch of a 30-step ``full`` run). In the demo's 20
        trials (14 epochs each) the live weights scored higher in 202 of 239 epochs, the average in 37 (28 of them
        after epoch 7). The record says which was kept (``kept``: ``ema`` or ``live``).
        """
        metric = self.task.scorer.metric
        candidates = [("live", net.suffix)] if ema is None else [("ema", ema.module), ("live", net.suffix)]
        results = self._predict(net, val, [suffix for _, suffix in candidates], cached=cached)
        scored = [(name, suffix, self.task.scorer.score(predictions, targets), loss)
                  for (name, suffix), (predictions, targets, loss) in zip(candidates, results)]
        name, suffix, score, loss = scored[0]
        for other in scored[1:]:
            if metric.better(other[2], score):
                name, suffix, score, loss = other
        extra = {} if ema is None else {f"val_{metric.name}_{n}": float(s) for n, _, s, _ in scored} | {"kept": name}
        return suffix, score, loss, extra
