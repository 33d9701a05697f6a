"""Which strategy a study recommends: the rule, and the uncertainty of the validation scores it rests on.

The test split is never used to choose. Two rules (``StudyConfig.recommend``):

- ``argmax``: the best mean validation metric; ties go to the strategy that trains fewer layers (scratch last).
- ``one-se``: the one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani & Friedman, *Elements of
  Statistical Learning* §7.10): the cheapest strategy (:attr:`~medtransfer.strategies.Strategy.cost_order`: fewest
  trained groups, scratch last) whose mean validation metric is within one standard error of the best mean. With
  validation sets of a few dozen images, "highest score" partly chases noise; the rule prefers the cheaper of two
  strategies the validation data cannot tell apart.

The standard error is a bootstrap over the validation cases *and* the seeds: each draw resamples the validation cases
(the same draw for every strategy) and the strategy's seeds, and scores the resampled cases of each drawn seed's
trial. Trials recorded before per-case validation records were stored (schema 3) fall back to the seeds' spread
(SD / √n), and with one seed and no cases there is no standard error: the rule is then ``argmax``, and says so.

Both rules also name the strategies *level* with the best: those whose mean is within one standard error of it,
which is what the report says when the data cannot separate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medtransfer.metrics.bootstrap import nanmean, resample_cases
from medtransfer.strategies import parse_strategy
from medtransfer.tasks import Metric

RULES = ("argmax", "one-se")
#: validation-case resamples behind a standard error
N_RESAMPLES = 500


@dataclass
class Evidence:
    """One strategy's validation scores at one training fraction."""

    strategy: str
    mean: float  # mean validation metric over seeds
    se: float  # bootstrap standard error of that mean (NaN: none could be computed)
    seeds: int
    source: str  # "cases" (bootstrap over validation cases and seeds), "seeds" (SD/√n), "none"


@dataclass
class Choice:
    """A rule's pick among the strategies of one fraction, and the strategies level with the best."""

    rule: str
    pick: str | None
    best: str | None  # the best mean validation metric (argmax's pick)
    level: list[str] = field(default_factory=list)  # within one SE of the best, cheapest first (best included)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return {"rule": self.rule, "pick": self.pick, "best": self.best, "level": self.level, "note": self.note,
                "evidence": {k: v.__dict__ for k, v in self.evidence.items()}}


def _cost(name: str):
    return parse_strategy(name).cost_order


def validation_evidence(cells: dict[str, dict[int, tuple[float, tuple | None]]], metric: Metric, *,
                        n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Evidence]:
    """``cells``: strategy → seed → (validation score, (validation sample indices, per-case columns) or None).

    Every strategy whose trials all have per-case records on the same validation cases gets a bootstrap standard
    error over those cases and its seeds; the others the seeds' SD/√n, or none.
    """
    recorded = [c[1] for runs in cells.values() for c in runs.values() if c[1] is not None]
    reference = recorded[0][0] if recorded else None
    idx = resample_cases(len(reference), n_resamples, seed)[1:] if reference is not None else None
    out = {}
    for strategy, runs in cells.items():
        scores = np.asarray([v for v, _ in runs.values()], dtype=np.float64)
        mean = float(nanmean(scores)) if len(scores) else float("nan")
        cases = [c for _, c in runs.values()]
        if idx is not None and all(c is not None and np.array_equal(c[0], reference) for c in cases):
            with np.errstate(all="ignore"):
                per_seed = np.stack([metric.statistic(c[1], idx) for c in cases])  # seeds × draws
            n = len(cases)
            chosen = np.random.default_rng(seed + n).integers(0, n, (len(idx), n))  # seeds drawn for each draw
            draws = nanmean(np.take_along_axis(per_seed.T, chosen, axis=1), axis=1)
            se, source = float(np.nanstd(draws, ddof=1)), "cases"
        elif len(scores) > 1:
            se, source = float(np.nanstd(scores, ddof=1) / np.sqrt(len(scores))), "seeds"
        else:
            se, source = float("nan"), "none"
        out[strategy] = Evidence(strategy, mean, se, len(scores), source)
    return out


def choose(evidence: dict[str, Evidence], metric: Metric, rule: str = "argmax") -> Choice:
    """The ``rule``'s pick among ``evidence`` (see the module docstring)."""
    if rule not in RULES:
        raise ValueError(f"unknown recommendation rule {rule!r}; use one of {', '.join(RULES)}")
    finite = {s: e for s, e in evidence.items() if np.isfinite(e.mean)}
    if not finite:
        return Choice(rule, None, None, evidence=evidence)
    best = min(finite, key=lambda s: (-metric.sign * finite[s].mean, _cost(s)))
    se = finite[best].se
    note = ""
    if np.isfinite(se):
        threshold = finite[best].mean - metric.sign * se
        level = sorted((s for s, e in finite.items() if metric.sign * (e.mean - threshold) >= 0), key=_cost)
    else:
        level = [best]
        note = ("no standard error: one seed and no per-case validation records, so the one-SE rule is the best mean"
                if rule == "one-se" else "")
    pick = level[0] if rule == "one-se" else best
    return Choice(rule, pick, best, level, evidence, note)


def rule_phrase(rule: str) -> str:
    """The rule in a few words, before "validation AUC at …": "best mean", or "cheapest strategy within …"."""
    return ("strategy with the best mean validation" if rule == "argmax" else
            "cheapest strategy within one standard error of the best mean validation")


def rule_sentence(rule: str, metric_label: str) -> str:
    """How the report states a rule."""
    if rule == "one-se":
        return (f"the one-standard-error rule: the cheapest strategy (fewest trained layers, scratch last) whose mean "
                f"validation {metric_label} at the largest training set is within one bootstrap standard error "
                f"(over validation cases and seeds) of the best mean")
    return (f"the best mean validation {metric_label} at the largest training set (ties go to the one that trains "
            f"fewer layers)")
