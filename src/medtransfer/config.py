"""The settings of a training run, held once: :class:`Settings` is what a run and a study share, :class:`RunConfig`
adds what one run fixes (its strategy, seed and training fraction, its device).

Each setting is a row of the table in :mod:`medtransfer.parameters`: its rule, its flag and help, its canonical form.
The rules are checked when the object is made, all problems at once, each in one form:
``The 'input_size' parameter of RunConfig must be an integer between 16 and 1024. Got 8 instead.``; only then are
values put in their canonical form. The command line makes its flags from the same rows and never restates a
default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from medtransfer.backbones.factory import DEFAULT_BACKBONE
from medtransfer.data.transforms import Augmentation
from medtransfer.errors import ConfigError, MedTransferError, parameter_error, raise_problems
from medtransfer.parameters import Flag, Rule, is_int, is_number, normalised, one_of, parses, setting, table_problems
from medtransfer.strategies import parse_strategy
from medtransfer.tasks import get_task, resolve_task, task_names
from medtransfer.training.config import DEFAULT_INPUT_SIZE, TrainConfig
from medtransfer.training.depthwise import valid_mode
from medtransfer.training.precision import PRECISIONS

CACHE_DTYPES = ("float16", "float32")


def _train_problems(name: str, owner: str, value) -> list[str]:
    if isinstance(value, TrainConfig):
        return []
    if not isinstance(value, dict):
        return [parameter_error(name, owner, "a mapping of training settings, e.g. {epochs: 30, lr: 0.001}",
                                value)]
    try:
        TrainConfig.from_dict(value)
    except ConfigError as e:
        return [str(e)]
    return []


def _train(value) -> TrainConfig:
    return value if isinstance(value, TrainConfig) else TrainConfig.from_dict(value)


_BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
_TASK = Rule(lambda v: v == "auto" or v in task_names(), lambda: f"one of {', '.join(task_names())} or auto")


@dataclass(kw_only=True)
class Settings:
    """What every training run of a study shares: the data, the network, how it trains."""

    data: str = setting(rule=Rule(lambda v: isinstance(v, str) and bool(v), "a MedMNIST name, a file or a folder"))
    backbone: str = setting(DEFAULT_BACKBONE, flag=Flag(str, "Any timm model name (default {default})."))
    weights: str = setting("imagenet", flag=Flag(str, "imagenet, scratch, or a .safetensors/.pth file (default "
                                                      "{default})."))
    input_size: int = setting(DEFAULT_INPUT_SIZE, rule=Rule(lambda v: is_int(v) and 16 <= v <= 1024,
                                                            "an integer between 16 and 1024 (pixels)"), flag=Flag(
        int, "Images are resized to this square size (default {default}{recipes}, or the stored images' size when "
             "smaller)."))
    split_seed: int = setting(0, rule=Rule(lambda v: is_int(v) and v >= 0, "a non-negative integer"))
    augmentation: str = setting("light", rule=parses(Augmentation.preset, "a preset ({error})"), flag=Flag(
        str, "none, light, strong or boxes, with +hflip/+vflip (default {default}{recipes}).", names=("--augment",)))
    train: TrainConfig = setting(factory=TrainConfig, rule=Rule(problems=_train_problems), normalise=_train)
    source_options: dict = setting(factory=dict, rule=Rule(lambda v: isinstance(v, dict),
                                                            "a mapping of source options"))
    #: frozen-prefix cache for linear / tune:K
    cache: bool = setting(True, rule=_BOOL, flag=Flag(bool, "Compute frozen layers once (default on).",
                                                      ("study",), names=("--cache/--no-cache",)))
    #: augmented views cached per training image (1 when augmentation is off)
    cache_views: int = setting(8, rule=Rule(lambda v: is_int(v) and v >= 1, "an integer >= 1"), flag=Flag(
        int, "Augmented views cached per training image (default {default}).", ("study",)))
    cache_dtype: str = setting("float16", rule=one_of(CACHE_DTYPES))
    #: a registered task, or told by the data's layout
    task: str = setting("auto", rule=_TASK, flag=Flag(str, "{tasks}, or auto (told by the data's layout; default)."))
    #: the task's own settings, validated by the task (see :meth:`problems`)
    task_options: dict = field(default_factory=dict)
    #: share of the data in a seeded test split (default: the task's)
    test_fraction: float | None = setting(None, rule=Rule(
        lambda v: v is None or (is_number(v) and 0 < v < 0.9), "a number in (0, 0.9), or None for the task's default"),
        flag=Flag(float, "Share of the data in a seeded test split when the source gives none (default: the "
                         "task's)."))
    #: training steps: auto (AMP on CUDA, fp32 on CPU), fp32, bf16 or fp16 (CUDA)
    precision: str = setting("auto", rule=one_of(PRECISIONS), flag=Flag(
        str, "Training steps in auto (mixed precision on CUDA: bf16, or fp16 with a gradient scaler; fp32 on a CPU), "
             "fp32, bf16 (on a CPU with BF16 units it speeds up dense convolutions, slows depthwise ones) or fp16 "
             "(CUDA)."))
    #: frozen layers run with BatchNorm folded into their convolutions in training
    fold_batchnorm: bool = setting(True, rule=_BOOL)
    #: depthwise weight gradient as a grouped convolution where the kernel overhangs the map: "auto" where timed
    #: faster on this machine (training/depthwise.py), true: there always, false: never
    fast_depthwise: bool | str = setting("auto", rule=Rule(
        valid_mode, "auto (time both ways once on this machine), true or false"))

    def __post_init__(self) -> None:
        raise_problems(self.problems())
        for name, value in normalised(self).items():  # canonical forms, once every value is known to be good
            setattr(self, name, value)

    # -- validation ----------------------------------------------------------------------------------------------
    def _problem(self, name: str, must: str) -> str:
        return parameter_error(name, type(self).__name__, must, getattr(self, name))

    def problems(self) -> list[str]:
        """Every problem with the settings, one sentence each: the table's rules, then the task's options (which
        depend on the task). Nothing is changed."""
        return table_problems(self) + self._task_option_problems()

    def _task_option_problems(self) -> list[str]:
        if self.task != "auto" and self.task not in task_names():
            return []  # the task's own rule says so
        if not isinstance(self.task_options, dict):
            return [self._problem("task_options", "a mapping of the task's options")]
        if not self.task_options:
            return []
        names = [self.task] if self.task != "auto" else [
            t for t in task_names() if set(self.task_options) <= {f.name for f in fields(get_task(t).inputs.options_type)}]
        if not names:  # told by the data later; no task takes these options
            return [self._problem("task_options", "options of one task (none takes all of these)")]
        if len(names) == 1:
            try:
                get_task(names[0]).inputs.options(self.task_options)
            except ConfigError as e:
                return [str(e)]
        return []

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

    strategy: str = setting("full", rule=parses(
        parse_strategy, "scratch, linear, tune:K, full, surgical:i or lp-ft ({error})"),
        normalise=lambda s: parse_strategy(s).name, flag=Flag(
            str, "scratch, linear, tune:K, full, surgical:i or lp-ft (default {default}).", ("train",)))
    seed: int = setting(0, rule=Rule(lambda v: is_int(v) and v >= 0, "a non-negative integer"),
                        flag=Flag(int, "The run's seed (default {default}).", ("train",)))
    train_fraction: float = setting(1.0, rule=Rule(lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
                                    flag=Flag(float, "Share of the training split used (default {default:g}).",
                                              ("train",), names=("--train-fraction", "--fraction")))
    device: str = "auto"
