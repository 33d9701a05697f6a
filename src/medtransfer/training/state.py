"""A paused training run: everything the loop carries from one epoch to the next.

That is the live weights, the optimiser, the schedule, the gradient scaler, the weight average, the best weights so
far, the epoch records and every random state the next batches draw from; restored, the run goes on from the next
epoch exactly as the uninterrupted run would. On disk it is a plain dict of tensors and numbers
(:meth:`TrainState.to_dict`), so that a saved state does not depend on where this class lives.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, fields

import numpy as np
import torch

from medtransfer.networks import TransferNet
from medtransfer.training.best import BestWeights
from medtransfer.training.stopping import EarlyStopping
from medtransfer.training.update import Update


def _generators(loader) -> list[torch.Generator]:
    """The random generators a training loader draws its order (and cached views) from."""
    found = [getattr(loader, "generator", None), getattr(getattr(loader, "dataset", None), "generator", None)]
    return [g for g in found if isinstance(g, torch.Generator)]


def random_state(loader) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "loader": [g.get_state() for g in _generators(loader)]}


def set_random_state(loader, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for g, saved in zip(_generators(loader), state["loader"], strict=True):
        g.set_state(saved)


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


@dataclass
class TrainState:
    """A run paused after ``epoch`` of ``epochs`` (see the module's docstring)."""

    epoch: int
    epochs: int
    suffix: dict  # the live weights
    optimizer: dict
    schedule: dict
    scaler: dict
    ema: dict | None  # the weight average's weights
    best_state: dict  # the best epoch's weights (the average's, if they scored higher)
    best_epoch: int
    best_score: float
    since_best: int
    history: list[dict]
    random: dict  # torch, numpy, python and the training loader's generators

    @classmethod
    def capture(cls, epoch: int, epochs: int, net: TransferNet, update: Update, best: BestWeights,
                stopping: EarlyStopping, history: list[dict], loader) -> TrainState:
        return cls(
            epoch=epoch, epochs=epochs, suffix=_cpu(net.suffix.state_dict()),
            optimizer=copy.deepcopy(update.optimizer.state_dict()), schedule=update.schedule.state_dict(),
            scaler=update.scaler.state_dict(), ema=_cpu(update.ema.module.state_dict()) if update.ema else None,
            best_state=_cpu(best.state), best_epoch=best.epoch, best_score=best.score,
            since_best=stopping.since_best, history=copy.deepcopy(history), random=random_state(loader),
        )

    def restore(self, epochs: int, net: TransferNet, update: Update, best: BestWeights, stopping: EarlyStopping,
                loader) -> list[dict]:
        """Put the paused run back into the loop's pieces (a run planned for ``epochs``); its epoch records."""
        if self.epochs != epochs:
            raise ValueError(f"the paused run was planned for {self.epochs} epochs, this one for {epochs}")
        net.suffix.load_state_dict(self.suffix)
        update.optimizer.load_state_dict(self.optimizer)
        update.schedule.load_state_dict(self.schedule)
        update.scaler.load_state_dict(self.scaler)
        if update.ema is not None:
            update.ema.module.load_state_dict(self.ema)
        best.state, best.epoch, best.score = self.best_state, self.best_epoch, self.best_score
        stopping.since_best = self.since_best
        set_random_state(loader, self.random)
        return copy.deepcopy(self.history)

    def to_dict(self) -> dict:
        """The state as a plain dict, for a file (:meth:`from_dict` reads it back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, saved: dict) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in fields(cls)})
