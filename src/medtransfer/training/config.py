"""Training hyper-parameters, validated up front."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from medtransfer.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")

#: BreastMNIST's 28 px images upsampled to 128 px: EfficientNet downsamples 32x, so 128 px leaves a 4x4 final
#: feature map, and ImageNet features are learned at object scales near that. Measured in the README's table.
DEFAULT_INPUT_SIZE = 128


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. Defaults were tuned on BreastMNIST with EfficientNet-Lite0 (see README)."""

    epochs: int = 30
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
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}"),
            (self.lr > 0, f"lr must be > 0, not {self.lr}"),
            (self.head_lr_multiplier > 0, "head_lr_multiplier must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.patience is None or self.patience >= 1, "patience must be >= 1 (or None to never stop early)"),
            (self.min_epochs is None or self.min_epochs >= 0, "min_epochs must be >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay must be in (0, 1)"),
            (0 < self.layer_decay <= 1, "layer_decay must be in (0, 1]"),
            (0 <= self.drop_rate < 1 and 0 <= self.drop_path_rate < 1, "drop_rate and drop_path_rate must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def earliest_stop(self) -> int:
        """The first epoch after which early stopping may end training."""
        return self.epochs * 2 // 3 if self.min_epochs is None else self.min_epochs

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d)
