"""Training: one network, one loop; the optimiser, schedule, early stopping and best checkpoint."""

from medtransfer.training.config import TrainConfig
from medtransfer.training.device import resolve_device
from medtransfer.training.trainer import FitResult, Trainer

__all__ = ["FitResult", "TrainConfig", "Trainer", "resolve_device"]
