"""Training hyper-parameters, validated up front."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from medtransfer.errors import parameter_error, raise_problems
from medtransfer.parameters import Flag, Rule, is_int, is_number, one_of, setting, table_problems

OPTIMIZERS = ("adamw", "sgd")

#: BreastMNIST's 28 px images upsampled to 128 px: EfficientNet downsamples 32x, so 128 px leaves a 4x4 final
#: feature map, and ImageNet features are learned at object scales near that. Measured in docs/benchmarks.md.
DEFAULT_INPUT_SIZE = 128

#: The data-dependent budget (``epochs=None``): as many epochs as reach ``budget_steps`` optimisation steps, within
#: these bounds. BreastMNIST (546 training images, 17 full batches of 32) keeps the 30 epochs its defaults were tuned
#: for; a 5,000-image set gets the minimum. Measured in docs/benchmarks.md.
MIN_EPOCHS, MAX_EPOCHS = 8, 30
BUDGET_STEPS = 540  # the default of TrainConfig.budget_steps
_BUDGET = (f"from the data, {BUDGET_STEPS} optimisation steps in {MIN_EPOCHS} to {MAX_EPOCHS} epochs "
           "(30 on BreastMNIST)")


def _at_least(low: int, none: str = "") -> Rule:
    """An integer >= ``low`` (or None, when ``none`` says what None means)."""
    must = f"an integer >= {low}" + (f", or None {none}" if none else "")
    return Rule(lambda v: (none and v is None) or (is_int(v) and v >= low), must)


def _in(low: float, high: float, closed: str, none: str = "") -> Rule:
    """A number in the interval from ``low`` to ``high``; ``closed`` is its brackets, e.g. ``"[)"``."""
    def check(v) -> bool:
        if none and v is None:
            return True
        return is_number(v) and (v >= low if closed[0] == "[" else v > low) and (
            v <= high if closed[1] == "]" else v < high)
    return Rule(check, f"a number in {closed[0]}{low:g}, {high:g}{closed[1]}" + (f", or None {none}" if none else ""))


def _patience(n: int) -> int | None:
    return n or None  # the flag's 0: never stop early


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. Defaults were tuned on BreastMNIST with EfficientNet-Lite0 (docs/benchmarks.md)."""

    #: None: from the data, see epochs_for (30 on BreastMNIST, 8 on a 5,000-image set)
    epochs: int | None = setting(None, rule=_at_least(1, "for a budget that follows the data"), flag=Flag(
        int, f"Maximum epochs (default: {_BUDGET}{{recipes}})."))
    #: with epochs=None: the optimisation steps aimed at (see MIN_EPOCHS, MAX_EPOCHS)
    budget_steps: int = setting(BUDGET_STEPS, rule=_at_least(1))
    batch_size: int = setting(32, rule=_at_least(1), flag=Flag(int, "Training batch size (default {default}{recipes})."))
    optimizer: str = setting("adamw", rule=one_of(OPTIMIZERS), flag=Flag(
        str, f"{' or '.join(OPTIMIZERS)} (default {{default}})."))
    lr: float = setting(1e-3, rule=Rule(lambda v: is_number(v) and 0 < v < float("inf"), "a finite number > 0"),
                        flag=Flag(float, "Learning rate of the trained layers (default {default}{recipes})."))
    #: the paper (SGD) gave the new last layer 10x; with AdamW 1x did better here
    head_lr_multiplier: float = setting(1.0, rule=Rule(lambda v: is_number(v) and v > 0, "a number > 0"))
    layer_decay: float = setting(1.0, rule=_in(0, 1, "(]"))  # each trainable group: this times the rate above it
    weight_decay: float = setting(1e-4, rule=Rule(lambda v: is_number(v) and v >= 0, "a number >= 0"))
    momentum: float = setting(0.9, rule=_in(0, 1, "[)"))  # SGD only
    warmup_epochs: int = setting(2, rule=_at_least(0))  # capped at epochs - 1
    #: epochs without validation improvement before stopping; None: never stop early
    patience: int | None = setting(10, rule=_at_least(1, "to never stop early"), flag=Flag(
        int, "Stop after this many epochs without a gain in the validation score (0: never; default {default}).",
        parse=_patience))
    #: no early stop before this epoch; None: 2/3 of the epochs (scratch starts slowly)
    min_epochs: int | None = setting(None, rule=_at_least(0, "for 2/3 of the epochs"))
    class_weighting: bool = True
    label_smoothing: float = setting(0.0, rule=_in(0, 1, "[)"))
    #: validate, keep and export an exponential moving average of the weights
    ema_decay: float | None = setting(0.99, rule=_in(0, 1, "()", "for no moving average"))
    drop_rate: float = setting(0.0, rule=_in(0, 1, "[)"))  # dropout before the classifier
    #: stochastic depth in the backbone, where the architecture has it
    drop_path_rate: float = setting(0.0, rule=_in(0, 1, "[)"))

    def __post_init__(self) -> None:
        raise_problems(table_problems(self))

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
