"""The training loop over (prefix output, target) batches.

Only the network's trainable suffix is optimised. Batches come either as images, which go through the frozen prefix
first, or as the prefix's outputs already computed (a cache), which go straight to the suffix. Validation after every
epoch drives early stopping; the best suffix weights are kept and restored at the end.

A run can be *paused* after an epoch (``on_epoch`` returns ``{"pause": True}``): :attr:`FitResult.state` then holds
everything the loop carries from one epoch to the next (the live weights, the optimiser, the schedule, the gradient
scaler, the weight average, the best weights so far, the epoch records and every random state that the next batches
draw from), and ``fit(..., resume=state)`` carries on from the next epoch exactly as the uninterrupted run would.
Successive halving pauses every trial at a rung and resumes only the better ones.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from medtransfer.errors import TrainingDiverged
from medtransfer.networks import TransferNet
from medtransfer.training.config import TrainConfig
from medtransfer.training.depthwise import Swapped, fast_depthwise
from medtransfer.training.precision import resolve_precision, settle_cpu_precision

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
    state: dict | None = None  # a paused run: what ``fit(..., resume=state)`` continues from


def _generators(loader) -> list[torch.Generator]:
    """The random generators a training loader draws its order (and cached views) from."""
    found = [getattr(loader, "generator", None), getattr(getattr(loader, "dataset", None), "generator", None)]
    return [g for g in found if isinstance(g, torch.Generator)]


def _random_state(loader) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "loader": [g.get_state() for g in _generators(loader)]}


def _set_random_state(loader, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for g, saved in zip(_generators(loader), state["loader"], strict=True):
        g.set_state(saved)


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


def _param_groups(net: TransferNet, cfg: TrainConfig) -> list[dict]:
    """Per-group learning rates; no weight decay on norms and biases.

    The new head gets ``lr * head_lr_multiplier``; the deepest trainable group ``lr``; each group below it
    ``layer_decay`` times the rate of the one above.
    """
    layers = [m for m in net.suffix.layers if any(p.requires_grad for p in m.parameters())]  # surgical: one
    parts = [(m, cfg.lr * cfg.layer_decay ** (len(layers) - 1 - i)) for i, m in enumerate(layers)]
    parts.append((net.suffix.head, cfg.lr * cfg.head_lr_multiplier))
    groups = []
    for part, lr in parts:
        decay = [p for p in part.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in part.parameters() if p.requires_grad and p.ndim <= 1]
        groups += [
            {"params": decay, "lr": lr, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]
    return [g for g in groups if g["params"]]


def build_optimizer(net: TransferNet, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (or SGD with Nesterov momentum) over the trainable parameters' groups. On CPUs and GPUs the fused
    implementation (one kernel for all parameters): measured on a 2-core AVX2 CPU, a cached ``tune:3`` step at the
    demo's size 283 ms instead of 308, ``tune:2`` 207 instead of 230 (the same update, summed in another order)."""
    groups = _param_groups(net, cfg)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in groups for p in g["params"])
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)


def warmup_cosine(total_steps: int, warmup_steps: int, floor: float = 0.01) -> Callable[[int], float]:
    """LR multiplier: linear warm-up to 1, then cosine decay to ``floor``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return floor + (1 - floor) * (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


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
        :meth:`~medtransfer.tasks.Scorer.predict` of them; with ``sizes`` (each image's own ``(h, w)``, in the order
        of ``batches``) they are its :meth:`~medtransfer.tasks.Scorer.predict_at` them."""
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
        resume: dict | None = None,
    ) -> FitResult:
        """Train ``net.suffix``; on return it holds the best epoch's weights. Raises :class:`TrainingDiverged`.

        ``on_epoch(epoch, epochs, validation score)``, after each epoch, returns fields for the epoch's record; one
        with ``pause`` True pauses the run there (``stopped = "paused"``, :attr:`FitResult.state` set; the field
        itself is not recorded). ``resume``: a paused run's state, to continue from its next epoch."""
        cfg = self.config
        net.to(self.device)
        steps_per_epoch = len(train)  # type: ignore[arg-type]
        epochs = cfg.epochs_for(steps_per_epoch)
        optimizer = build_optimizer(net, cfg)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(epochs * steps_per_epoch, min(cfg.warmup_epochs, epochs - 1) * steps_per_epoch)
        )
        scaler = self.precision.scaler()
        ema = None
        if cfg.ema_decay:
            from timm.utils import ModelEmaV3

            ema = ModelEmaV3(net.suffix, decay=cfg.ema_decay, use_warmup=True, device=self.device)
        metric = self.task.scorer.metric
        result = FitResult(best_score=metric.worst(), epochs=epochs)
        best_state: dict[str, torch.Tensor] | None = None
        since_best, first = 0, 1
        if resume is not None:
            if resume["epochs"] != epochs:
                raise ValueError(f"the paused run was planned for {resume['epochs']} epochs, this one for {epochs}")
            net.suffix.load_state_dict(resume["suffix"])
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["schedule"])
            scaler.load_state_dict(resume["scaler"])
            if ema is not None:
                ema.module.load_state_dict(resume["ema"])
            best_state, since_best, first = resume["best_state"], resume["since_best"], resume["epoch"] + 1
            result.best_epoch, result.best_score = resume["best_epoch"], resume["best_score"]
            result.history = copy.deepcopy(resume["history"])
            _set_random_state(train, resume["random"])
        bar = self.progress.add_task("epoch", total=epochs * steps_per_epoch,
                                     completed=(first - 1) * steps_per_epoch) if self.progress else None
        start = time.perf_counter()
        self._fitting, self._folded_prefix = True, None
        kernels = contextlib.ExitStack()
        try:
            self.depthwise = kernels.enter_context(fast_depthwise(net.suffix, self.fast_depthwise))
            for epoch in range(first, epochs + 1):
                t0 = time.perf_counter()
                net.train()  # the prefix stays in eval mode whatever is asked of it
                total, n = 0.0, 0
                t_train = time.perf_counter()
                for x, y in train:
                    inputs = self._inputs(net, x, cached)  # the frozen layers in float32, as the cache holds them
                    with self.precision.autocast():
                        out = net.suffix(inputs)
                        loss = self.task.scorer.loss(out, self.task.codec.to_device(y, self.device))
                    if not torch.isfinite(loss):
                        self._diverged(net, best_state, result, epoch)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    schedule.step()
                    if ema is not None:
                        ema.update(net.suffix)
                    total += float(loss.detach()) * len(y)
                    n += len(y)
                    if bar is not None:
                        self.progress.update(bar, advance=1, description=f"epoch {epoch}/{epochs} loss {total / n:.3f}")
                train_seconds = time.perf_counter() - t_train
                evaluated, score, val_loss, scores = self._validate(net, val, cached, ema)
                record = {
                    "epoch": epoch,
                    "train_loss": total / max(n, 1),
                    "val_loss": val_loss,
                    f"val_{metric.name}": score,
                    **scores,
                    "lr": optimizer.param_groups[-1]["lr"] / cfg.head_lr_multiplier,
                    "seconds": time.perf_counter() - t0,
                    "train_seconds": train_seconds,
                    "train_images": n,
                }
                verdict = dict(on_epoch(epoch, epochs, float(score))) if on_epoch is not None else {}
                pause = verdict.pop("pause", False)
                record.update(verdict)
                result.history.append(record)
                improved = metric.better(score, result.best_score)
                if improved or best_state is None:
                    result.best_epoch, result.best_score = epoch, float(score) if np.isfinite(score) else result.best_score
                    best_state = copy.deepcopy(evaluated.state_dict())
                    since_best = 0
                    if on_best is not None and evaluated is net.suffix:
                        on_best(net, epoch)
                    elif on_best is not None:
                        self._save_best(net, best_state, epoch, on_best)
                else:
                    since_best += 1
                if bar is not None:
                    self.progress.update(
                        bar,
                        description=f"epoch {epoch}/{epochs} loss {record['train_loss']:.3f} "
                        f"val {metric.label} {score:.3f} (best {result.best_score:.3f} @ {result.best_epoch})",
                    )
                if cfg.patience is not None and since_best >= cfg.patience and epoch >= cfg.earliest_stop(epochs):
                    result.stopped = "early_stopped"
                    break
                if pause and epoch < epochs:
                    result.stopped = "paused"
                    result.state = {
                        "epoch": epoch, "epochs": epochs, "suffix": _cpu(net.suffix.state_dict()),
                        "optimizer": copy.deepcopy(optimizer.state_dict()), "schedule": schedule.state_dict(),
                        "scaler": scaler.state_dict(), "ema": _cpu(ema.module.state_dict()) if ema else None,
                        "best_state": _cpu(best_state), "best_epoch": result.best_epoch,
                        "best_score": result.best_score, "since_best": since_best,
                        "history": copy.deepcopy(result.history), "random": _random_state(train),
                    }
                    break
        finally:
            kernels.close()
            self._fitting, self._folded_prefix = False, None
            if bar is not None:
                self.progress.remove_task(bar)
            result.seconds = time.perf_counter() - start
        if best_state is not None:
            net.suffix.load_state_dict(best_state)
        return result

    def restore(self, net: TransferNet, state: dict) -> FitResult:
        """A paused run (:attr:`FitResult.state`) as it stands at its pause, trained no further: ``net.suffix`` holds
        its best weights so far and the result its epoch records (``stopped = "pruned"``: the run ends there)."""
        net.to(self.device)
        net.suffix.load_state_dict(state["best_state"])
        return FitResult(history=copy.deepcopy(state["history"]), best_epoch=state["best_epoch"],
                         best_score=state["best_score"], epochs=state["epochs"], stopped="pruned")

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

    @staticmethod
    def _save_best(net: TransferNet, best_state: dict, epoch: int, on_best) -> None:
        """Hand ``on_best`` the network holding the scored weights (the EMA's, if any), then carry on training."""
        live = copy.deepcopy(net.suffix.state_dict())
        net.suffix.load_state_dict(best_state)
        try:
            on_best(net, epoch)
        finally:
            net.suffix.load_state_dict(live)

    def _diverged(self, net: TransferNet, best_state, result: FitResult, epoch: int) -> None:
        result.stopped = "diverged"
        if best_state is not None:
            net.suffix.load_state_dict(best_state)
        kept = f"kept the best checkpoint (epoch {result.best_epoch})" if best_state else "no checkpoint to keep yet"
        raise TrainingDiverged(
            f"the training loss became non-finite in epoch {epoch}; training stopped and {kept}. "
            f"Lower the learning rate (--lr) or check the images for extreme values.",
            epoch=epoch,
            best_epoch=result.best_epoch or None,
        )
