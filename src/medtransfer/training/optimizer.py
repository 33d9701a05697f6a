"""The optimiser over a network's trainable suffix and its learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from medtransfer.networks import TransferNet
from medtransfer.training.config import TrainConfig


def param_groups(net: TransferNet, cfg: TrainConfig) -> list[dict]:
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
    implementation (one kernel for all parameters), which is faster on a CPU too (docs/benchmarks.md); it sums the
    same update in another order."""
    groups = param_groups(net, cfg)
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


def build_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epochs: int,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A step-wise :func:`warmup_cosine` over ``epochs``; the warm-up leaves at least one epoch of decay."""
    warmup = min(cfg.warmup_epochs, epochs - 1) * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(epochs * steps_per_epoch, warmup))
