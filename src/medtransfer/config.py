"""The settings of a training run, held once: :class:`Settings` is what a run and a study share, :class:`RunConfig`
adds what one run fixes (its strategy, seed and training fraction, its device).

Every setting is validated when the object is made, all problems at once, each in one form:
``The 'input_size' parameter of RunConfig must be an integer between 16 and 1024. Got 8 instead.`` The command line
reads its defaults from here and never restates them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from medtransfer.backbones.factory import DEFAULT_BACKBONE
from medtransfer.data.transforms import Augmentation
from medtransfer.errors import ConfigError, parameter_error, raise_problems
from medtransfer.strategies import parse_strategy
from medtransfer.training.config import DEFAULT_INPUT_SIZE, TrainConfig
from medtransfer.training.depthwise import valid_mode
from medtransfer.training.precision import PRECISIONS

CACHE_DTYPES = ("float16", "float32")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(kw_only=True)
class Settings:
    """What every training run of a study shares: the data, the network, how it trains."""

    data: str
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"  # imagenet, scratch, or a .safetensors/.pth file
    input_size: int = DEFAULT_INPUT_SIZE
    split_seed: int = 0
    augmentation: str = "light"  # none, light or strong, with +hflip / +vflip
    train: TrainConfig = field(default_factory=TrainConfig)
    source_options: dict = field(default_factory=dict)
    cache: bool = True  # frozen-prefix cache for linear / tune:K
    cache_views: int = 8  # augmented views cached per training image (1 when augmentation is off)
    cache_dtype: str = "float16"
    task: str = "auto"  # a registered task, or told by the data's layout
    task_options: dict = field(default_factory=dict)  # the task's own settings, validated by the task
    test_fraction: float | None = None  # share of the data in a seeded test split (default: the task's)
    precision: str = "auto"  # training steps: auto (AMP on CUDA, fp32 on CPU), fp32, bf16 or fp16 (CUDA)
    fold_batchnorm: bool = True  # frozen layers run with BatchNorm folded into their convolutions in training
    #: depthwise weight gradient as a grouped convolution where the kernel overhangs the map: "auto" where timed
    #: faster on this machine (training/depthwise.py), true: there always, false: never
    fast_depthwise: bool | str = "auto"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if isinstance(self.train, dict):
            try:
                self.train = TrainConfig.from_dict(self.train)
            except ConfigError as e:
                problems.append(str(e))
        elif not isinstance(self.train, TrainConfig):
            problems.append(self._problem("train", "a mapping of training settings, e.g. {epochs: 30, lr: 0.001}"))
        problems += self.problems()
        raise_problems(problems)

    # -- validation ----------------------------------------------------------------------------------------------
    def _problem(self, name: str, must: str) -> str:
        return parameter_error(name, type(self).__name__, must, getattr(self, name))

    def problems(self) -> list[str]:
        """Every problem with the settings, one sentence each; subclasses add theirs."""
        from medtransfer.tasks import get_task, task_names

        p = []
        if not isinstance(self.data, str) or not self.data:
            p.append(self._problem("data", "a MedMNIST name, a file or a folder"))
        if not _is_int(self.input_size) or not 16 <= self.input_size <= 1024:
            p.append(self._problem("input_size", "an integer between 16 and 1024 (pixels)"))
        if not _is_int(self.split_seed) or self.split_seed < 0:
            p.append(self._problem("split_seed", "a non-negative integer"))
        try:
            Augmentation.preset(self.augmentation)
        except ConfigError as e:
            p.append(self._problem("augmentation", f"a preset ({e})"))
        if not isinstance(self.source_options, dict):
            p.append(self._problem("source_options", "a mapping of source options"))
        if not isinstance(self.cache, bool):
            p.append(self._problem("cache", "true or false"))
        if not _is_int(self.cache_views) or self.cache_views < 1:
            p.append(self._problem("cache_views", "an integer >= 1"))
        if self.precision not in PRECISIONS:
            p.append(self._problem("precision", f"one of {', '.join(PRECISIONS)}"))
        if not isinstance(self.fold_batchnorm, bool):
            p.append(self._problem("fold_batchnorm", "true or false"))
        if not valid_mode(self.fast_depthwise):
            p.append(self._problem("fast_depthwise", "auto (time both ways once on this machine), true or false"))
        if self.cache_dtype not in CACHE_DTYPES:
            p.append(self._problem("cache_dtype", f"one of {', '.join(CACHE_DTYPES)}"))
        if self.test_fraction is not None and not (_is_number(self.test_fraction) and 0 < self.test_fraction < 0.9):
            p.append(self._problem("test_fraction", "a number in (0, 0.9), or None for the task's default"))
        if self.task != "auto" and self.task not in task_names():
            p.append(self._problem("task", f"one of {', '.join(task_names())} or auto"))
        elif not isinstance(self.task_options, dict):
            p.append(self._problem("task_options", "a mapping of the task's options"))
        elif self.task_options:
            names = [self.task] if self.task != "auto" else [
                t for t in task_names()
                if set(self.task_options) <= {f.name for f in fields(get_task(t).inputs.options_type)}]
            if not names:  # told by the data later; no task takes these options
                p.append(self._problem("task_options", "options of one task (none takes all of these)"))
            elif len(names) == 1:
                try:
                    get_task(names[0]).inputs.options(self.task_options)
                except ConfigError as e:
                    p.append(str(e))
        return p

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def with_recipe(cls, **given):
        """The settings ``given``, and for those not given the task's :attr:`~medtransfer.tasks.TaskInputs.recipe` (the
        task named by ``task``, or told by the layout of ``data``), then this class's defaults. ``train`` may be a
        mapping of the training settings given (the recipe fills the others) or a :class:`TrainConfig`. This is how
        the command line and config files build their settings: detection gets its own input size and schedule
        without a flag."""
        recipe = _recipe(given.get("data"), given.get("task", "auto"), given.get("source_options") or {})
        train, train_recipe = given.pop("train", None), recipe.pop("train", {})
        if isinstance(train, TrainConfig):  # a whole training config: every setting given
            train = train.to_dict()
        merged = {**recipe, **given}
        if train is not None or train_recipe:
            merged["train"] = {**train_recipe, **train} if isinstance(train, dict) else (train or train_recipe)
        return cls(**merged)

    # -- conversion ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d

    def shared(self) -> dict:
        """The :class:`Settings` fields of this object, to make another config with the same settings."""
        return {f.name: getattr(self, f.name) for f in fields(Settings)}


def _recipe(data, task: str, source_options: dict) -> dict:
    """The recipe of the task ``task`` (or of the one ``data``'s layout tells) for ``data``; empty when neither
    says."""
    from medtransfer.errors import MedTransferError
    from medtransfer.tasks import get_task, resolve_task

    try:
        if task not in (None, "auto"):
            kind = get_task(task)
        elif isinstance(data, str) and data:
            kind = resolve_task("auto", data)
        else:
            return {}
        if isinstance(data, str) and data:
            return kind.inputs.recipe_for(data, **source_options)
        return dict(kind.inputs.recipe)
    except MedTransferError:  # an unknown task or unreadable data: the settings' own checks say so later
        return {}


@dataclass(kw_only=True)
class RunConfig(Settings):
    """Everything that defines one training run."""

    strategy: str = "full"
    seed: int = 0
    train_fraction: float = 1.0
    device: str = "auto"

    def problems(self) -> list[str]:
        p = super().problems()
        try:
            self.strategy = parse_strategy(self.strategy).name
        except ConfigError as e:
            p.append(self._problem("strategy", f"scratch, linear, tune:K, full, surgical:i or lp-ft ({e})"))
        if not _is_int(self.seed) or self.seed < 0:
            p.append(self._problem("seed", "a non-negative integer"))
        if not _is_number(self.train_fraction) or not 0 < self.train_fraction <= 1:
            p.append(self._problem("train_fraction", "a number in (0, 1]"))
        return p
