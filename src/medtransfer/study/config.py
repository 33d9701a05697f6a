"""A study's configuration: the grid (strategies × training fractions × seeds) and how each trial trains.

Loaded from flags or a YAML file, validated with one clear error per mistake, and hashed so that a study folder is
never resumed with a different configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from medtransfer.backbones import DEFAULT_BACKBONE
from medtransfer.data import Augmentation
from medtransfer.errors import ConfigError
from medtransfer.run import DEFAULT_INPUT_SIZE, RunConfig
from medtransfer.strategies import parse_strategy
from medtransfer.training import TrainConfig

DEFAULT_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
DEFAULT_SEEDS = (0, 1, 2)
CHECKPOINT_POLICIES = ("best", "all", "none")
#: Settings added after the first studies were made, with their defaults (see :meth:`StudyConfig.hash`).
_LATER_SETTINGS = {"task": "auto", "test_fraction": None, "decoder": "unet"}


@dataclass
class StudyConfig:
    """What a study runs. ``strategies=None`` means the paper's layer-wise list for the backbone."""

    data: str
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"
    input_size: int = DEFAULT_INPUT_SIZE
    strategies: list[str] | None = None
    fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    split_seed: int = 0
    augmentation: str = "light"
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoints: str = "best"
    source_options: dict = field(default_factory=dict)
    cache: bool = True  # frozen-prefix cache for linear / tune:K trials
    cache_views: int = 8
    cache_dtype: str = "float16"
    task: str = "auto"  # classification, segmentation, or told by the data's layout
    test_fraction: float | None = None  # seeded test split share (default: the task's)
    decoder: str = "unet"  # segmentation: unet or fpn

    def __post_init__(self) -> None:
        from medtransfer.tasks import TASKS

        if isinstance(self.train, dict):
            self.train = TrainConfig.from_dict(self.train)
        if isinstance(self.seeds, int):
            self.seeds = list(range(self.seeds))
        errors = []
        if self.strategies is not None:
            if not self.strategies:
                errors.append("strategies is empty; leave it out for the layer-wise list")
            for s in self.strategies:
                try:
                    parse_strategy(s)
                except ConfigError as e:
                    errors.append(str(e))
            self.strategies = [parse_strategy(s).name for s in self.strategies if _parses(s)]
            if len(set(self.strategies)) != len(self.strategies):
                errors.append(f"strategies {self.strategies} list one twice")
        if not self.fractions:
            errors.append("fractions is empty; give at least 1.0")
        for f in self.fractions:
            if not isinstance(f, (int, float)) or not 0 < f <= 1:
                errors.append(f"fraction {f!r} must be a number in (0, 1], e.g. 0.25 for 25 %")
        if len(set(self.fractions)) != len(self.fractions):
            errors.append(f"fractions {self.fractions} list one twice")
        if not self.seeds or not all(isinstance(s, int) and s >= 0 for s in self.seeds):
            errors.append(f"seeds {self.seeds!r} must be non-negative integers (or a count)")
        if self.checkpoints not in CHECKPOINT_POLICIES:
            errors.append(f"checkpoints {self.checkpoints!r} must be one of {', '.join(CHECKPOINT_POLICIES)}")
        try:
            Augmentation.preset(self.augmentation)
        except ConfigError as e:
            errors.append(str(e))
        if self.cache_dtype not in ("float16", "float32"):
            errors.append(f"cache_dtype {self.cache_dtype!r} must be float16 or float32")
        if not isinstance(self.cache_views, int) or self.cache_views < 1:
            errors.append(f"cache_views {self.cache_views!r} must be an integer >= 1")
        if not 16 <= self.input_size <= 1024:
            errors.append(f"input_size {self.input_size} must be between 16 and 1024 pixels")
        if self.task != "auto" and self.task not in TASKS:
            errors.append(f"task {self.task!r} must be one of {', '.join(TASKS)} or auto")
        if self.decoder not in ("unet", "fpn"):
            errors.append(f"decoder {self.decoder!r} must be unet or fpn")
        if self.test_fraction is not None and not (isinstance(self.test_fraction, (int, float)) and 0 < self.test_fraction < 0.9):
            errors.append(f"test_fraction {self.test_fraction!r} must be a number in (0, 0.9)")
        if errors:
            raise ConfigError("; ".join(errors))
        self.fractions = sorted((float(f) for f in self.fractions), reverse=True)

    # -- files -------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> StudyConfig:
        """Read ``path``; ``overrides`` (from flags) win over the file. Unknown keys are an error."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        merged = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
        if isinstance(raw.get("train"), dict) and isinstance(overrides.get("train"), dict):
            merged["train"] = {**raw["train"], **overrides["train"]}
        try:
            return cls(**merged)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d

    def hash(self) -> str:
        """A digest of everything that changes results (not the device). Settings added after a study was made
        count only when they differ from their defaults, so older study folders still resume."""
        d = {k: v for k, v in self.to_dict().items() if not (k in _LATER_SETTINGS and v == _LATER_SETTINGS[k])}
        canonical = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def run_config(self, strategy: str, fraction: float, seed: int, device: str) -> RunConfig:
        return RunConfig(
            data=self.data, strategy=strategy, backbone=self.backbone, weights=self.weights,
            input_size=self.input_size, seed=seed, train_fraction=fraction, split_seed=self.split_seed,
            augmentation=self.augmentation, train=self.train, device=device, source_options=self.source_options,
            cache=self.cache, cache_views=self.cache_views, cache_dtype=self.cache_dtype, task=self.task,
            test_fraction=self.test_fraction, decoder=self.decoder,
        )

    @property
    def task_name(self) -> str:
        """The task: as set, or told by the data's layout."""
        from medtransfer.data import infer_task

        return infer_task(self.data) if self.task == "auto" else self.task


def _parses(s: str) -> bool:
    try:
        parse_strategy(s)
        return True
    except ConfigError:
        return False
