"""What a task brings to the shared machinery: its network head, loss, probabilities and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup
from medtransfer.networks import FrozenPrefix, Normalize, TrainableSuffix, TransferNet
from medtransfer.strategies import Strategy


class Task(ABC):
    """A learning task. Sources, strategies, the trainer and the run folder are shared; a task adds only this."""

    name: str = ""
    #: the validation metric that early stopping and model selection maximise.
    selection_metric: str = ""
    #: the share of the data a seeded split puts in test (validation is always 10 %).
    test_fraction: float = 0.2

    # -- from data and back ------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def for_data(cls, data, train_targets, config) -> Task:
        """The task for ``data`` (its classes) as the run's ``config`` sets it up, with what it learns from the
        training targets (class weights)."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: dict) -> Task:
        """The task of a saved model, from its ``model.json``."""

    @staticmethod
    @abstractmethod
    def load_targets(data, indices: np.ndarray, size: int):
        """The targets of ``data.samples[indices]`` for images resized to ``size`` (labels, or masks)."""

    @classmethod
    def describe(cls, data, parts: dict[str, np.ndarray]) -> dict:
        """Per-part facts for the dataset card (``parts``: name -> sample indices)."""
        return {}

    @abstractmethod
    def predictions_csv(self, indices: np.ndarray, targets: np.ndarray, probs: np.ndarray) -> str:
        """The test predictions of a run folder, one row per test case."""

    # -- the network -------------------------------------------------------------------------------------

    @abstractmethod
    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int] | None) -> torch.nn.Module:
        """The new, always-trainable module after ``groups`` (this task's :meth:`layout`); with ``taps`` it takes
        the tapped groups' outputs as a tuple, shallow to deep."""

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: torch.nn.Module) -> torch.nn.Module:
        """The module whose ``state_dict`` a saved model holds; its keys do not depend on the strategy's cut."""
        return backbone.model

    def groups(self, backbone: Backbone) -> list[LayerGroup]:
        """The backbone groups this task's network uses, shallow to deep; the strategies count these."""
        return self.layout(backbone)[0]

    @classmethod
    def layout(cls, backbone: Backbone) -> tuple[list[LayerGroup], list[int] | None]:
        """The groups, and the 0-based groups whose outputs the head also reads (``None``: only the last)."""
        return backbone.groups, None

    @staticmethod
    def cache_reads(frozen: int, taps: list[int] | None) -> int | tuple[int, ...]:
        """The group boundaries (1-based) a network cut after ``frozen`` groups reads from the prefix cache: one
        boundary, or the tapped boundaries within the prefix followed by the cut (the prefix's tuple output)."""
        if taps is None:
            return frozen
        return (*[t + 1 for t in taps if t < frozen], frozen)

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        """Cut ``backbone`` for ``strategy``: normalisation + frozen groups | trainable groups + head. The tapped
        outputs travel as a tuple through both halves."""
        groups, taps = self.layout(backbone)
        k = strategy.frozen_groups(len(groups))
        head = self.head(backbone, groups, taps)
        modules = [g.module for g in groups]
        # the prefix returns what a cached trial reads: Normalize sits at position 0, so group boundary b is position b
        prefix = FrozenPrefix(Normalize(backbone.mean, backbone.std), *modules[:k],
                              taps=None if taps is None else self.cache_reads(k, taps)[:-1])
        suffix = TrainableSuffix(modules[k:], head, taps=None if taps is None else [t - k for t in taps if t >= k])
        return TransferNet(prefix, suffix, num_frozen=k, weights_module=self.saved_weights(backbone, groups, head))

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

    def case_scores(self, probs: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        """One score per test case, if the metric is a mean over cases (segmentation's Dice); None for AUC."""
        return None

    def config(self) -> dict:
        """What is needed to rebuild this task (stored with a saved model)."""
        return {"task": self.name}
