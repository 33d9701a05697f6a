"""A loss that is no longer finite ends the run, keeping the best weights found before it."""

from __future__ import annotations

import torch

from medtransfer.errors import TrainingDiverged
from medtransfer.networks import TransferNet
from medtransfer.training.best import BestWeights


def check_finite(loss: torch.Tensor, epoch: int, net: TransferNet, best: BestWeights) -> None:
    """Raise :class:`TrainingDiverged` on a non-finite ``loss``, with ``net.suffix`` back at its best weights."""
    if torch.isfinite(loss):
        return
    kept = (f"kept the best checkpoint (epoch {best.epoch})" if best.restore(net)
            else "no checkpoint to keep yet")
    raise TrainingDiverged(
        f"the training loss became non-finite in epoch {epoch}; training stopped and {kept}. "
        f"Lower the learning rate (--lr) or check the images for extreme values.",
        epoch=epoch,
        best_epoch=best.epoch or None,
    )
