"""A task network as two modules: a frozen prefix and a trainable suffix.

``TransferNet(x) = suffix(prefix(x))``. The prefix holds the input normalisation and the frozen backbone groups; the
suffix holds the trainable groups and the task's head (classifier or decoder). Because the prefix is a fixed function
of the image, its output can be computed once and cached; the trainer only ever differentiates through the suffix.
The network takes ``uint8`` image tensors (``B×C×H×W``, 1 or 3 channels), so an exported model needs no separate
preprocessing beyond resizing.

A decoder (segmentation) also reads intermediate feature maps, the outputs of some backbone groups ("taps"). Then
the prefix returns a tuple ``(*tapped maps so far, current output)`` and the suffix carries it on, appending the maps
tapped in its own groups before its head reads them all. Without taps both pass a single tensor (classification).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``uint8`` (or ``[0, 255]`` float) images to the backbone's normalised 3-channel input."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def run_layers(layers: nn.Sequential, x, taps: Sequence[int] | None):
    """Run ``layers`` in order. With ``taps`` (0-based positions in ``layers``), ``x`` is a tuple
    ``(*kept, current)`` and the outputs of tapped positions are kept; the result is again such a tuple."""
    if taps is None:
        return layers(x)
    *kept, y = x
    for i, layer in enumerate(layers):
        y = layer(y)
        if i in taps:
            kept.append(y)
    return (*kept, y)


class FrozenPrefix(nn.Module):
    """Modules that never train: no gradients, always in eval mode (BatchNorm statistics stay as loaded).

    ``taps``: positions in ``layers`` whose outputs a decoder reads (``None``: return only the last output).
    """

    def __init__(self, *layers: nn.Module, taps: Sequence[int] | None = None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.layers.requires_grad_(False)
        self.taps = None if taps is None else tuple(taps)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenPrefix:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor):
        return run_layers(self.layers, x if self.taps is None else (x,), self.taps)


class TrainableSuffix(nn.Module):
    """The trainable backbone groups followed by the task head (which gets the tapped maps, if any, as a tuple)."""

    def __init__(self, layers: Sequence[nn.Module], head: nn.Module, taps: Sequence[int] | None = None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head = head
        self.taps = None if taps is None else tuple(taps)

    def forward(self, x) -> torch.Tensor:
        y = run_layers(self.layers, x, self.taps)
        return self.head(y if self.taps is None else y[:-1])


class TransferNet(nn.Module):
    """``suffix(prefix(x))``; ``num_frozen`` backbone groups live in the prefix.

    ``weights_module`` is the module whose ``state_dict`` is saved (the timm model, or encoder + decoder): its keys
    do not depend on where the strategy cut the network. It is kept unregistered, so that parameters are not listed
    twice.
    """

    def __init__(self, prefix: FrozenPrefix, suffix: TrainableSuffix, num_frozen: int,
                 weights_module: nn.Module | None = None):
        super().__init__()
        self.prefix = prefix
        self.suffix = suffix
        self.num_frozen = num_frozen
        self.__dict__["weights_module"] = weights_module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.suffix(self.prefix(x))
