"""A task's head factory: the new, always-trained module after the backbone's groups, which groups it reads, the
weights a saved model holds, and the network cut for a strategy."""

from __future__ import annotations

import torch

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup
from medtransfer.networks import FrozenInPlace, FrozenPrefix, Normalize, TrainableSuffix, TransferNet
from medtransfer.strategies import Strategy


class HeadFactory:
    """By default timm's pooling and new classifier on the last group (reset to the data's classes when the
    backbone is created); the saved weights are timm's model."""

    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int] | None) -> torch.nn.Module:
        """The new, always-trainable module after ``groups`` (this task's :meth:`layout`); with ``taps`` it takes
        the tapped groups' outputs as a tuple, shallow to deep."""
        return backbone.head

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: torch.nn.Module) -> torch.nn.Module:
        """The module whose ``state_dict`` a saved model holds; its keys do not depend on the strategy's cut."""
        return backbone.model

    def layout(self, backbone: Backbone) -> tuple[list[LayerGroup], list[int] | None]:
        """The groups, and the 0-based groups whose outputs the head also reads (``None``: only the last)."""
        return backbone.groups, None

    def groups(self, backbone: Backbone) -> list[LayerGroup]:
        """The backbone groups this task's network uses, shallow to deep; the strategies count these."""
        return self.layout(backbone)[0]

    @staticmethod
    def cache_reads(frozen: int, taps: list[int] | None) -> int | tuple[int, ...]:
        """The group boundaries (1-based) a network cut after ``frozen`` groups reads from the prefix cache: one
        boundary, or the tapped boundaries within the prefix followed by the cut (the prefix's tuple output)."""
        if taps is None:
            return frozen
        return (*[t + 1 for t in taps if t < frozen], frozen)

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        """Cut ``backbone`` for ``strategy``: normalisation + frozen groups | trainable groups + head. The tapped
        outputs travel as a tuple through both halves. The backbone's groups train unless the cut freezes them
        (a network cut again from the same backbone, as ``lp-ft``'s second stage is, gets them back trainable)."""
        groups, taps = self.layout(backbone)
        k = strategy.frozen_groups(len(groups))
        head = self.head(backbone, groups, taps)
        modules = [g.module.requires_grad_(True) for g in groups]
        # the prefix returns what a cached trial reads: Normalize sits at position 0, so group boundary b is position b
        prefix = FrozenPrefix(Normalize(backbone.mean, backbone.std), *modules[:k],
                              taps=None if taps is None else self.cache_reads(k, taps)[:-1])
        layers = modules[k:]
        if strategy.kind == "surgical":  # group i trains; the groups above it pass gradients but do not change
            layers = [layers[0], *(FrozenInPlace(m) for m in layers[1:])]
        suffix = TrainableSuffix(layers, head, taps=None if taps is None else [t - k for t in taps if t >= k])
        return TransferNet(prefix, suffix, frozen_groups=k, weights_module=self.saved_weights(backbone, groups, head))
