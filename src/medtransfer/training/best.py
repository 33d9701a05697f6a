"""The best epoch's weights so far, by the validation score, and what to do when they change."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from medtransfer.networks import TransferNet


class BestWeights:
    """The best validation score so far (the ``metric``'s direction decides), its epoch (1-based) and a copy of the
    suffix weights that scored it. ``on_best(net, epoch)`` sees the network holding each new best."""

    def __init__(self, metric, on_best: Callable[[TransferNet, int], None] | None = None):
        self.metric = metric
        self.on_best = on_best
        self.epoch = 0
        self.score = metric.worst()
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, net: TransferNet, evaluated: nn.Module, epoch: int, score: float) -> bool:
        """Keep ``evaluated``'s weights (``net.suffix`` or its weight average) if ``score`` is the best yet, or if
        nothing is kept yet (a first epoch that scores NaN still leaves weights to restore); True if kept."""
        if not (self.metric.better(score, self.score) or self.state is None):
            return False
        self.epoch, self.score = epoch, float(score) if np.isfinite(score) else self.score
        self.state = copy.deepcopy(evaluated.state_dict())
        if self.on_best is not None and evaluated is net.suffix:
            self.on_best(net, epoch)
        elif self.on_best is not None:
            self._announce_average(net, epoch)
        return True

    def _announce_average(self, net: TransferNet, epoch: int) -> None:
        """Hand ``on_best`` the network holding the scored weights (the average's), then carry on training."""
        live = copy.deepcopy(net.suffix.state_dict())
        net.suffix.load_state_dict(self.state)
        try:
            self.on_best(net, epoch)
        finally:
            net.suffix.load_state_dict(live)

    def restore(self, net: TransferNet) -> bool:
        """Put the best weights into ``net.suffix``; False if there are none yet."""
        if self.state is None:
            return False
        net.suffix.load_state_dict(self.state)
        return True
