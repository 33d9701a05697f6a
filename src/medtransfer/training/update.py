"""One optimisation step of the trainable suffix: the optimiser, its schedule, the gradient scaler and the weight
average, which move together on every batch and are paused and resumed together."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from medtransfer.networks import TransferNet
from medtransfer.training.config import TrainConfig
from medtransfer.training.optimizer import build_optimizer, build_schedule
from medtransfer.training.precision import Precision


def weight_average(suffix: nn.Module, decay: float | None, device: torch.device):
    """An exponential moving average of ``suffix``'s weights (timm's, with warm-up), or None without ``decay``."""
    if not decay:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(suffix, decay=decay, use_warmup=True, device=device)


@dataclass
class Update:
    """The optimiser, its learning-rate schedule, the gradient scaler and the weight average (or None)."""

    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: object = None

    @classmethod
    def build(cls, net: TransferNet, cfg: TrainConfig, device: torch.device, precision: Precision, epochs: int,
              steps_per_epoch: int) -> Update:
        optimizer = build_optimizer(net, cfg)
        schedule = build_schedule(optimizer, cfg, epochs, steps_per_epoch)
        return cls(optimizer, schedule, precision.scaler(), weight_average(net.suffix, cfg.ema_decay, device))

    def step(self, loss: torch.Tensor, suffix: nn.Module) -> None:
        """Back-propagate ``loss``, step the weights and the schedule, and average the new weights in."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(suffix)

    def base_lr(self, head_lr_multiplier: float) -> float:
        """The learning rate now, of the deepest trainable group (the head's divided by its multiplier)."""
        return self.optimizer.param_groups[-1]["lr"] / head_lr_multiplier
