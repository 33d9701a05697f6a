"""A study's configuration: the shared run :class:`~medtransfer.config.Settings` plus the grid (strategies ×
training fractions × seeds) and which checkpoints to keep.

Loaded from flags or a YAML file, validated with every problem listed at once, and hashed so that a study folder is
never resumed with a different configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

from medtransfer.compat import hashed_layout, task_options_from_top_level
from medtransfer.config import RunConfig, Settings
from medtransfer.config_files import read_config_file
from medtransfer.errors import ConfigError, parameter_error, shorten
from medtransfer.parameters import Flag, Rule, is_int, is_number, one_of, setting
from medtransfer.strategies import parse_strategy
from medtransfer.study.recommend import RULES
from medtransfer.tracking.spec import parse_track

DEFAULT_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
DEFAULT_SEEDS = (0, 1, 2)
CHECKPOINT_POLICIES = ("best", "all", "none")
SEARCHES = ("grid", "layerwise", "halving")
def _strategies_problems(name: str, owner: str, value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        return [parameter_error(name, owner, "a non-empty list, or None for the layer-wise list", value)]
    p, names = [], []
    for s in value:
        try:
            names.append(parse_strategy(s).name)
        except ConfigError:
            p.append(parameter_error(name, owner, f"a list of scratch, linear, tune:K, full, surgical:i or lp-ft "
                                                  f"({shorten(s)} is not)", value))
    if len(set(names)) != len(names):
        p.append(parameter_error(name, owner, "a list that names each strategy once", value))
    return p


def _fractions_problems(name: str, owner: str, value) -> list[str]:
    if not (isinstance(value, list) and value and all(is_number(f) and 0 < f <= 1 for f in value)):
        return [parameter_error(name, owner, "a non-empty list of numbers in (0, 1], e.g. [1.0, 0.25]", value)]
    if len(set(value)) != len(value):
        return [parameter_error(name, owner, "a list that names each fraction once", value)]
    return []


def _seeds(value) -> list[int]:
    return list(range(value)) if is_int(value) else value  # a count: seeds 0 … count-1


def _track_problems(name: str, owner: str, value) -> list[str]:
    try:
        parse_track([value] if isinstance(value, str) else value, name)
    except ConfigError as e:
        return [str(e)]
    return []


def _split(cast, flag: str):
    """A flag's comma-separated list, e.g. ``--fractions 1,0.5``."""
    def parse(text: str) -> list:
        try:
            return [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: give a comma-separated list") from None
    return parse


def _seed_count_or_list(text: str) -> list[int]:
    seeds = _split(int, "--seeds")(text)
    if len(seeds) == 1 and "," not in text:
        if seeds[0] < 1:
            raise ConfigError(f"--seeds {text}: a count must be at least 1; to run seed 0 alone, give --seeds 1")
        return list(range(seeds[0]))
    return seeds


@dataclass(kw_only=True)
class StudyConfig(Settings):
    """What a study runs. ``strategies=None`` means the paper's layer-wise list for the backbone."""

    strategies: list[str] | None = setting(
        None, rule=Rule(problems=_strategies_problems),
        normalise=lambda v: None if v is None else [parse_strategy(s).name for s in v], flag=Flag(
            str, "Comma-separated, e.g. scratch,linear,tune:3,full (default: all depths; opt-in: surgical:i, lp-ft).",
            ("study",), parse=_split(str, "--strategies")))
    fractions: list[float] = setting(
        factory=lambda: list(DEFAULT_FRACTIONS), rule=Rule(problems=_fractions_problems),
        normalise=lambda v: sorted((float(f) for f in v), reverse=True), flag=Flag(
            str, "Training fractions, e.g. 1,0.5,0.25,0.1.", ("study",), parse=_split(float, "--fractions")))
    seeds: list[int] = setting(
        factory=lambda: list(DEFAULT_SEEDS), normalise=_seeds, rule=Rule(
            lambda v: (is_int(v) and v >= 1) or (isinstance(v, list) and v and all(is_int(s) and s >= 0 for s in v)),
            "a list of non-negative integers, or a count"), flag=Flag(
            str, "A count (3) or a list (0,1,2).", ("study",), parse=_seed_count_or_list))
    checkpoints: str = setting("best", rule=one_of(CHECKPOINT_POLICIES), flag=Flag(
        str, "best (per strategy), all, or none (default {default}).", ("study",)))
    #: how the recommendation is chosen on validation (:mod:`medtransfer.study.recommend`)
    recommend: str = setting("argmax", rule=Rule(
        lambda v: isinstance(v, str) and v in RULES, lambda: f"one of {', '.join(RULES)}"), flag=Flag(
        str, "argmax (best mean validation score) or one-se (the cheapest strategy within one standard error of the "
             "best; default {default}).", ("study",)))
    #: ``grid``: every strategy; ``layerwise``: the paper's scheme, deeper one group at a time until it stops paying
    #: (:mod:`medtransfer.study.search`); ``halving``: every trial starts and pauses at each rung, the better
    #: strategies resume (:mod:`medtransfer.study.halving`)
    search: str = setting("grid", rule=one_of(SEARCHES), flag=Flag(
        str, "grid (every strategy), layerwise (linear, tune:1, tune:2, … until deeper stops helping, plus scratch "
             "and full) or halving (every trial starts and pauses at each rung; the better strategies resume; "
             "default {default}).", ("study",)))
    #: layer-wise search: stop after this many consecutive depths without an improvement beyond one standard error
    patience_depth: int = setting(2, rule=Rule(lambda v: is_int(v) and v >= 1, "an integer ≥ 1"), flag=Flag(
        int, "Layer-wise search: stop after this many depths in a row without a gain beyond one standard error "
             "(default {default}).", ("study",)))
    #: successive halving: the best 1/η of the strategies at a rung go on (η, ≥ 2)
    halving_rate: int = setting(2, rule=Rule(lambda v: is_int(v) and v >= 2, "an integer ≥ 2"), flag=Flag(
        int, "Successive halving: the best 1/RATE of the strategies at each rung go on (default {default}).",
        ("study",)))
    #: experiment trackers the trials are also logged to: mlflow, mlflow=URI, tensorboard
    #: (:mod:`medtransfer.tracking`); not part of what the study is, so it resumes with tracking turned on or off
    track: list[str] | None = setting(
        None, rule=Rule(problems=_track_problems), normalise=lambda v: [v] if isinstance(v, str) else v, flag=Flag(
            list[str], "Also log to mlflow (a SQLite store in the output folder), mlflow=URI or tensorboard; "
                       "repeatable. Needs medtransfer[mlflow] / [tensorboard].", ("train", "study", "demo"),
            metavar="TRACKER"))
    #: the MLflow experiment the study is logged to (default: the study folder's name); not part of what the study is
    experiment: str | None = setting(None, rule=Rule(
        lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
        "a non-empty name, or None for the study folder's name"), flag=Flag(
        str, "MLflow experiment (default: the output folder's name).", ("train", "study", "demo")))

    # -- files ---------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict, *, where: str = "StudyConfig") -> StudyConfig:
        """A config from a mapping (a YAML file's, or one a study stored). Settings that older versions kept at the
        top level and that now belong to a task's options are moved there."""
        known = {f.name for f in fields(cls)}
        raw = dict(raw)
        moved = task_options_from_top_level(raw, known)
        unknown = sorted(set(raw) - known, key=str)
        if unknown:
            named = ", ".join(k if isinstance(k, str) and len(k) <= 40 else shorten(k, 40) for k in unknown[:10])
            raise ConfigError(f"{where}: unknown setting(s) {named}{' …' if len(unknown) > 10 else ''}; known: "
                              f"{', '.join(sorted(known))}")
        if moved:
            raw["task_options"] = {**moved, **(raw.get("task_options") or {})}
        return cls.with_recipe(**raw)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> StudyConfig:
        """Read ``path``; ``overrides`` (from flags) win over the file. Unknown keys are an error."""
        path = Path(path)
        raw = read_config_file(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
        merged = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
        for nested in ("train", "task_options"):
            if isinstance(raw.get(nested), dict) and isinstance(overrides.get(nested), dict):
                merged[nested] = {**raw[nested], **overrides[nested]}
        return cls.from_dict(merged, where=str(path))

    def hash(self, *, with_rule: bool = False) -> str:
        """A digest of everything that changes results (not the device, nor the trackers, nor the recommendation
        rule, which only reads them: a finished study can be re-chosen under another rule). It is computed over the layout older
        versions stored (task options at the top level), and settings added after a study was made count only when
        they differ from their defaults, so older study folders still resume. ``with_rule``: the digest of the
        version that counted a non-default rule, which the studies it made stored."""
        d = self.to_dict()
        d.pop("track")
        d.pop("experiment")
        if not with_rule:
            d.pop("recommend")
        d = hashed_layout(d, self.task)
        canonical = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def run_config(self, strategy: str, fraction: float, seed: int, device: str = "auto") -> RunConfig:
        """The configuration of one trial."""
        return RunConfig(**self.shared(), strategy=strategy, train_fraction=fraction, seed=seed, device=device)
