"""A study's configuration: the shared run :class:`~medtransfer.config.Settings` plus the grid (strategies ×
training fractions × seeds) and which checkpoints to keep.

Loaded from flags or a YAML file, validated with every problem listed at once, and hashed so that a study folder is
never resumed with a different configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from medtransfer.compat import hashed_layout, task_options_from_top_level
from medtransfer.config import RunConfig, Settings
from medtransfer.config_files import read_config_file
from medtransfer.errors import ConfigError, shorten
from medtransfer.strategies import parse_strategy
from medtransfer.tracking.spec import parse_track

DEFAULT_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
DEFAULT_SEEDS = (0, 1, 2)
CHECKPOINT_POLICIES = ("best", "all", "none")
SEARCHES = ("grid", "layerwise", "halving")
@dataclass(kw_only=True)
class StudyConfig(Settings):
    """What a study runs. ``strategies=None`` means the paper's layer-wise list for the backbone."""

    strategies: list[str] | None = None
    fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    checkpoints: str = "best"
    #: how the recommendation is chosen on validation (:mod:`medtransfer.study.recommend`)
    recommend: str = "argmax"
    #: ``grid``: every strategy; ``layerwise``: the paper's scheme, deeper one group at a time until it stops paying
    #: (:mod:`medtransfer.study.search`); ``halving``: every trial starts and pauses at each rung, the better strategies resume
    #: (:mod:`medtransfer.study.halving`)
    search: str = "grid"
    #: layer-wise search: stop after this many consecutive depths without an improvement beyond one standard error
    patience_depth: int = 2
    #: successive halving: the best 1/η of the strategies at a rung go on (η, ≥ 2)
    halving_rate: int = 2
    #: experiment trackers the trials are also logged to: mlflow, mlflow=URI, tensorboard
    #: (:mod:`medtransfer.tracking`); not part of what the study is, so it resumes with tracking turned on or off
    track: list[str] | None = None
    #: the MLflow experiment the study is logged to (default: the study folder's name); not part of what the study is
    experiment: str | None = None

    def problems(self) -> list[str]:
        from medtransfer.study.recommend import RULES

        p = super().problems()
        if self.recommend not in RULES:
            p.append(self._problem("recommend", f"one of {', '.join(RULES)}"))
        if self.search not in SEARCHES:
            p.append(self._problem("search", f"one of {', '.join(SEARCHES)}"))
        if not isinstance(self.patience_depth, int) or isinstance(self.patience_depth, bool) or self.patience_depth < 1:
            p.append(self._problem("patience_depth", "an integer ≥ 1"))
        if not isinstance(self.halving_rate, int) or isinstance(self.halving_rate, bool) or self.halving_rate < 2:
            p.append(self._problem("halving_rate", "an integer ≥ 2"))
        if isinstance(self.track, str):
            self.track = [self.track]
        try:
            parse_track(self.track, "track")
        except ConfigError as e:
            p.append(str(e))
        if self.experiment is not None and (not isinstance(self.experiment, str) or not self.experiment.strip()):
            p.append(self._problem("experiment", "a non-empty name, or None for the study folder's name"))
        if isinstance(self.seeds, int) and not isinstance(self.seeds, bool):
            self.seeds = list(range(self.seeds))
        if self.strategies is not None:
            if not isinstance(self.strategies, list) or not self.strategies:
                p.append(self._problem("strategies", "a non-empty list, or None for the layer-wise list"))
            else:
                names = []
                for s in self.strategies:
                    try:
                        names.append(parse_strategy(s).name)
                    except ConfigError:
                        p.append(self._problem("strategies", f"a list of scratch, linear, tune:K, full, surgical:i "
                                                             f"or lp-ft ({shorten(s)} is not)"))
                if len(set(names)) != len(names):
                    p.append(self._problem("strategies", "a list that names each strategy once"))
                self.strategies = names
        fractions_ok = (isinstance(self.fractions, list) and self.fractions
                        and all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1
                                for f in self.fractions))
        if not fractions_ok:
            p.append(self._problem("fractions", "a non-empty list of numbers in (0, 1], e.g. [1.0, 0.25]"))
        elif len(set(self.fractions)) != len(self.fractions):
            p.append(self._problem("fractions", "a list that names each fraction once"))
        else:
            self.fractions = sorted((float(f) for f in self.fractions), reverse=True)
        if not isinstance(self.seeds, list) or not self.seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            p.append(self._problem("seeds", "a list of non-negative integers, or a count"))
        if self.checkpoints not in CHECKPOINT_POLICIES:
            p.append(self._problem("checkpoints", f"one of {', '.join(CHECKPOINT_POLICIES)}"))
        return p

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
