"""Training hyper-parameters, validated up front."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from medtransfer.errors import parameter_error, raise_problems

OPTIMIZERS = ("adamw", "sgd")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

#: BreastMNIST's 28 px images upsampled to 128 px: EfficientNet downsamples 32x, so 128 px leaves a 4x4 final
#: feature map, and ImageNet features are learned at object scales near that. Measured in docs/benchmarks.md.
DEFAULT_INPUT_SIZE = 128

#: The data-dependent budget (``epochs=None``): as many epochs as reach ``budget_steps`` optimisation steps, within
#: these bounds. BreastMNIST (546 training images, 17 full batches of 32) keeps the 30 epochs its defaults were tuned
#: for; a 5,000-image set gets the minimum. Measured in docs/benchmarks.md.
MIN_EPOCHS, MAX_EPOCHS = 8, 30


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. Defaults were tuned on BreastMNIST with EfficientNet-Lite0 (docs/benchmarks.md)."""

    epochs: int | None = None  # None: from the data, see epochs_for (30 on BreastMNIST, 8 on a 5,000-image set)
    budget_steps: int = 540  # with epochs=None: the optimisation steps aimed at (see MIN_EPOCHS, MAX_EPOCHS)
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    head_lr_multiplier: float = 1.0  # the paper (SGD) gave the new last layer 10x; with AdamW 1x did better here
    layer_decay: float = 1.0  # each trainable group gets this times the rate of the group above it
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    warmup_epochs: int = 2  # capped at epochs - 1
    patience: int | None = 10  # epochs without validation improvement before stopping; None: never stop early
    min_epochs: int | None = None  # no early stop before this epoch; None: 2/3 of the epochs (scratch starts slowly)
    class_weighting: bool = True
    label_smoothing: float = 0.0
    ema_decay: float | None = 0.99  # validate, keep and export an exponential moving average of the weights
    drop_rate: float = 0.0  # dropout before the classifier
    drop_path_rate: float = 0.0  # stochastic depth in the backbone, where the architecture has it

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs is None or (_int(self.epochs) and self.epochs >= 1),
             "an integer >= 1, or None for a budget that follows the data"),
            ("budget_steps", _int(self.budget_steps) and self.budget_steps >= 1, "an integer >= 1"),
            ("batch_size", _int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("lr", _num(self.lr) and 0 < self.lr < float("inf"), "a finite number > 0"),
            ("head_lr_multiplier", _num(self.head_lr_multiplier) and self.head_lr_multiplier > 0, "a number > 0"),
            ("weight_decay", _num(self.weight_decay) and self.weight_decay >= 0, "a number >= 0"),
            ("momentum", _num(self.momentum) and 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("warmup_epochs", _int(self.warmup_epochs) and self.warmup_epochs >= 0, "an integer >= 0"),
            ("patience", self.patience is None or (_int(self.patience) and self.patience >= 1),
             "an integer >= 1, or None to never stop early"),
            ("min_epochs", self.min_epochs is None or (_int(self.min_epochs) and self.min_epochs >= 0),
             "an integer >= 0, or None for 2/3 of the epochs"),
            ("label_smoothing", _num(self.label_smoothing) and 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("ema_decay", self.ema_decay is None or (_num(self.ema_decay) and 0 < self.ema_decay < 1),
             "a number in (0, 1), or None for no moving average"),
            ("layer_decay", _num(self.layer_decay) and 0 < self.layer_decay <= 1, "a number in (0, 1]"),
            ("drop_rate", _num(self.drop_rate) and 0 <= self.drop_rate < 1, "a number in [0, 1)"),
            ("drop_path_rate", _num(self.drop_path_rate) and 0 <= self.drop_path_rate < 1, "a number in [0, 1)"),
        ]
        raise_problems([parameter_error(name, "TrainConfig", must, getattr(self, name))
                        for name, ok, must in checks if not ok])

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The number of epochs a run with ``steps_per_epoch`` batches an epoch trains: ``epochs`` when given, else
        ``ceil(budget_steps / steps_per_epoch)`` within [MIN_EPOCHS, MAX_EPOCHS] — the same number of weight updates
        whatever the size of the training set, and never fewer than MIN_EPOCHS passes over it."""
        if self.epochs is not None:
            return self.epochs
        return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(self.budget_steps / max(1, steps_per_epoch))))

    def earliest_stop(self, epochs: int | None = None) -> int:
        """The first epoch after which early stopping may end a run of ``epochs`` epochs (default: ``epochs``)."""
        epochs = self.epochs if epochs is None else epochs
        if self.min_epochs is not None:
            return self.min_epochs
        return (epochs if epochs is not None else MAX_EPOCHS) * 2 // 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        raise_problems([parameter_error(k, "TrainConfig", f"one of {', '.join(sorted(names))}", k) for k in unknown])
        return cls(**d)
