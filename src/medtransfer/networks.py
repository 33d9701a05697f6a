"""A task network as two modules: a frozen prefix and a trainable suffix.

``TransferNet(x) = suffix(prefix(x))``. The prefix holds the input normalisation and the frozen backbone groups; the
suffix holds the trainable groups and the task's head (classifier or decoder). Because the prefix is a fixed function
of the image, its output can be computed once and cached; the trainer only ever differentiates through the suffix.
The network takes ``uint8`` image tensors (``B×C×H×W``, 1 or 3 channels), so an exported model needs no separate
preprocessing beyond resizing.
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


class FrozenPrefix(nn.Module):
    """Modules that never train: no gradients, always in eval mode (BatchNorm statistics stay as loaded)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.layers.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenPrefix:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TrainableSuffix(nn.Module):
    """The trainable backbone groups followed by the task head."""

    def __init__(self, layers: Sequence[nn.Module], head: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


class TransferNet(nn.Module):
    """``suffix(prefix(x))``; ``num_frozen`` backbone groups live in the prefix."""

    def __init__(self, prefix: FrozenPrefix, suffix: TrainableSuffix, num_frozen: int):
        super().__init__()
        self.prefix = prefix
        self.suffix = suffix
        self.num_frozen = num_frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.suffix(self.prefix(x))
