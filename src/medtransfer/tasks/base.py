"""What a task brings to the shared machinery: its network head, loss, probabilities and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from medtransfer.backbones import Backbone
from medtransfer.networks import FrozenPrefix, Normalize, TrainableSuffix, TransferNet
from medtransfer.strategies import Strategy


class Task(ABC):
    """A learning task. Sources, strategies, the trainer and the run folder are shared; a task adds only this."""

    name: str = ""
    #: the validation metric that early stopping and model selection maximise.
    selection_metric: str = ""

    @abstractmethod
    def head(self, backbone: Backbone) -> torch.nn.Module:
        """The new, always-trainable module after the backbone groups."""

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        """Cut ``backbone`` for ``strategy``: normalisation + frozen groups | trainable groups + head."""
        k = strategy.frozen_groups(backbone.num_groups)
        groups = [g.module for g in backbone.groups]
        prefix = FrozenPrefix(Normalize(backbone.mean, backbone.std), *groups[:k])
        suffix = TrainableSuffix(groups[k:], self.head(backbone))
        return TransferNet(prefix, suffix, num_frozen=k)

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def score(self, probs: np.ndarray, targets: np.ndarray) -> float:
        """The selection metric (higher is better) on validation predictions."""

    @abstractmethod
    def evaluate(self, probs: np.ndarray, targets: np.ndarray, *, seed: int = 0) -> dict[str, dict[str, float]]:
        """Test metrics with confidence intervals: ``{metric: {"value", "ci_low", "ci_high"}}``."""

    def config(self) -> dict:
        """What is needed to rebuild this task (stored with a saved model)."""
        return {"task": self.name}
