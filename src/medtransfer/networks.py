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

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


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


def fold_batchnorm(module: nn.Module) -> tuple[nn.Module, int]:
    """A copy of an eval-mode ``module`` with every BatchNorm that directly follows a convolution folded into it.

    A convolution and the BatchNorm registered right after it in the same parent (timm's ``conv_pw``/``bn1``,
    ``conv1``/``bn1``, a ``Sequential(conv, bn)``) become one convolution with the normalisation in its weights and
    bias; the BatchNorm's activation (timm's ``BatchNormAct2d``) stays. Only valid while the BatchNorm's running
    statistics are used, i.e. in eval mode. Registration order is how these models are written, not a guarantee of
    forward order, so callers check the folded copy's output against the original (:func:`folded_if_equal`).
    Returns the copy and the number of folds.
    """
    folded = copy.deepcopy(module)
    count = 0
    for parent in folded.modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
                    and bn.running_mean is not None and conv.out_channels == bn.num_features):
                weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                                    bn.weight, bn.bias)
                conv.weight, conv.bias = weight, bias
                after = [m for name, m in bn.named_children() if name in ("drop", "act")]  # timm's BatchNormAct2d
                parent._modules[b] = nn.Sequential(*after) if after else nn.Identity()
                count += 1
    return folded.eval().requires_grad_(False), count


@torch.no_grad()
def folded_if_equal(module: nn.Module, probe: torch.Tensor, rtol: float = 1e-3, atol: float = 1e-4) -> nn.Module:
    """``module`` with its BatchNorms folded (:func:`fold_batchnorm`) if the folded copy gives the same output on
    ``probe`` within float tolerance; otherwise ``module`` itself."""
    module.eval()
    folded, count = fold_batchnorm(module)
    if not count:
        return module
    expected, got = module(probe), folded(probe)
    return folded if torch.allclose(got, expected, rtol=rtol, atol=atol) else module


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

    @torch.no_grad()
    def folded(self, probe: torch.Tensor) -> FrozenPrefix:
        """A copy with BatchNorm folded into the convolutions (:func:`fold_batchnorm`), each layer checked against
        the original on ``probe`` (a batch of inputs) and kept unfolded if they differ. Training uses it; the saved
        and delivered network is the unfolded one."""
        layers, y = [], probe
        for layer in self.layers:
            layer = folded_if_equal(layer, y)
            y = layer(y)
            layers.append(layer)
        return FrozenPrefix(*layers, taps=self.taps)


class FrozenInPlace(nn.Module):
    """A group that does not train but that gradients pass through, to a trainable group below it (a surgical
    strategy's groups above the tuned one): no parameter gradients, always in eval mode."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenInPlace:
        return super().train(False)

    def forward(self, x):
        return self.module(x)


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
    """``suffix(prefix(x))``; ``frozen_groups`` backbone groups live in the prefix.

    ``weights_module`` is the module whose ``state_dict`` is saved (the timm model, or encoder + decoder): its keys
    do not depend on where the strategy cut the network. It is kept unregistered, so that parameters are not listed
    twice.
    """

    def __init__(self, prefix: FrozenPrefix, suffix: TrainableSuffix, frozen_groups: int,
                 weights_module: nn.Module | None = None):
        super().__init__()
        self.prefix = prefix
        self.suffix = suffix
        self.frozen_groups = frozen_groups
        self.__dict__["weights_module"] = weights_module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.suffix(self.prefix(x))
