"""From recorded trials to answers: the table, the recommended depth and the paired evidence.

The metric is the task's: AUC for classification, Dice for segmentation. The recommendation is the strategy with the
best mean *validation* metric at the largest training fraction; ties go to the strategy that trains fewer layers
(scratch last). The test split is only used to report: mean test metric over seeds with a case-bootstrap interval,
and paired comparisons of the recommended strategy against scratch and its neighbouring depths on the same test
cases. Table columns are named for the metric: ``test_auc``, ``test_auc_low``, ``val_auc``, … or ``test_dice``, ….
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medtransfer.metrics.paired import (
    mean_interval,
    paired_difference,
    resampled_metric,
)
from medtransfer.strategies import parse_strategy
from medtransfer.study.store import StudyStore, trial_id

#: Task -> (the study metric, how it is written, the other test metrics averaged in the table).
TASK_METRICS = {
    "classification": ("auc", "AUC", ("accuracy", "balanced_accuracy", "sensitivity", "specificity")),
    "segmentation": ("dice", "Dice", ("iou", "hd95")),
}


def metric_label(metric: str) -> str:
    """``"auc"`` -> ``"AUC"``, ``"dice"`` -> ``"Dice"``."""
    return {m: label for m, label, _ in TASK_METRICS.values()}.get(metric, metric)


def strategy_order(name: str) -> tuple[int, int]:
    """scratch, linear, tune:1, tune:2, …, full: shallow to deep tuning."""
    s = parse_strategy(name)
    return {"scratch": (0, 0), "linear": (1, 0), "tune": (2, s.depth), "full": (3, 0)}[s.kind]


def _training_cost(name: str) -> tuple[int, int]:
    """Tie-break for the recommendation: fewer trained groups first, pre-trained before scratch."""
    s = parse_strategy(name)
    return {"linear": (0, 0), "tune": (1, s.depth), "full": (2, 0), "scratch": (3, 0)}[s.kind]


@dataclass
class Comparison:
    a: str
    b: str
    fraction: float
    difference: dict  # value, ci_low, ci_high, p_value, significant

    def sentence(self, metric: str = "AUC") -> str:  # metric as written, e.g. "AUC" or "Dice"
        d = self.difference
        verb = "beat" if d["value"] > 0 else "trailed"
        sig = "significant" if d["significant"] else "not significant"
        return (f"{self.a} {verb} {self.b} at {self.fraction:.0%} of the training data by {abs(d['value']):.3f} "
                f"{metric} (95 % CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}, p = {d['p_value']:.3f}, {sig})")


@dataclass
class StudySummary:
    table: pd.DataFrame  # one row per strategy × fraction
    recommended: str | None
    recommended_fraction: float | None
    comparisons: list[Comparison] = field(default_factory=list)
    scratch_vs_best: list[Comparison] = field(default_factory=list)  # per fraction: best fine-tuned (by val) vs scratch
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)
    task: str = "classification"

    @property
    def metric(self) -> str:
        """The study metric's column stem: ``auc`` or ``dice``."""
        return TASK_METRICS[self.task][0]

    @property
    def metric_label(self) -> str:
        return TASK_METRICS[self.task][1]

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "metric": self.metric,
            "recommended": self.recommended,
            "recommended_at_fraction": self.recommended_fraction,
            "table": self.table.to_dict(orient="records"),
            "comparisons": [c.__dict__ | {"sentence": c.sentence(self.metric_label)} for c in self.comparisons],
            "fine_tuning_vs_scratch": [c.__dict__ | {"sentence": c.sentence(self.metric_label)} for c in self.scratch_vs_best],
            "failed": self.failed.to_dict(orient="records"),
        }


def _runs(store: StudyStore, done: pd.DataFrame, strategy: str, fraction: float) -> dict[int, tuple]:
    """seed -> (test probabilities, test targets) of the finished trials of one strategy and fraction."""
    rows = done[(done.strategy == strategy) & (done.fraction == fraction)]
    runs = {}
    for seed in rows.seed:
        pred = store.predictions(trial_id(strategy, fraction, int(seed)))
        if pred is not None:
            runs[int(seed)] = (pred[2], pred[1])
    return runs


def summarize(store: StudyStore, label_kind: str = "binary", task: str = "classification") -> StudySummary:
    trials = store.trials()
    done = trials[trials.status == "done"] if len(trials) else trials
    failed = trials[trials.status == "failed"][["strategy", "fraction", "seed", "error"]] if len(trials) else trials
    m, _, others = TASK_METRICS[task]
    metric = resampled_metric(task, label_kind)
    rows = []
    for (strategy, fraction), g in done.groupby(["strategy", "fraction"]) if len(done) else []:
        runs = _runs(store, done, strategy, fraction)
        ci = mean_interval(list(runs.values()), metric) if runs else {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
        test = g[f"test_{m}"]
        rows.append({
            "strategy": strategy,
            "fraction": fraction,
            "seeds": len(g),
            f"test_{m}": float(test.mean()),
            f"test_{m}_low": ci["ci_low"],
            f"test_{m}_high": ci["ci_high"],
            f"test_{m}_sd": float(test.std(ddof=1)) if len(g) > 1 else np.nan,
            f"val_{m}": float(g.val_score.mean()),
            **{f"test_{o}": float(g[f"test_{o}"].mean()) for o in others if f"test_{o}" in g},
            "seconds": float(g.seconds.mean()),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return StudySummary(table, None, None, failed=failed, task=task)
    table = table.sort_values(["fraction", "strategy"], key=lambda c: c.map(strategy_order) if c.name == "strategy" else -c)
    table = table.reset_index(drop=True)

    top = table.fraction.max()
    at_top = table[table.fraction == top].copy()
    at_top["cost"] = at_top.strategy.map(_training_cost)
    best = at_top.sort_values([f"val_{m}", "cost"], ascending=[False, True]).iloc[0].strategy
    summary = StudySummary(table, best, float(top), failed=failed, task=task)

    ordered = sorted(at_top.strategy, key=strategy_order)
    i = ordered.index(best)
    others = [s for s in dict.fromkeys(["scratch", *ordered[max(0, i - 1):i], *ordered[i + 1:i + 2]]) if s != best]
    for other in others:
        comparison = _compare(store, done, best, other, top, metric)
        if comparison:
            summary.comparisons.append(comparison)
    # question 1 at every fraction: the fine-tuned strategy with the best validation metric against scratch
    for fraction in sorted(table.fraction.unique(), reverse=True):
        tuned = table[(table.fraction == fraction) & (table.strategy != "scratch")]
        if tuned.empty or "scratch" not in set(table[table.fraction == fraction].strategy):
            continue
        pick = tuned.sort_values(f"val_{m}", ascending=False).iloc[0].strategy
        comparison = _compare(store, done, pick, "scratch", fraction, metric)
        if comparison:
            summary.scratch_vs_best.append(comparison)
    return summary


def _compare(store, done, a: str, b: str, fraction: float, metric) -> Comparison | None:
    runs_a = _runs(store, done, a, fraction)
    runs_b = _runs(store, done, b, fraction)
    seeds = sorted(set(runs_a) & set(runs_b))
    if not seeds:
        return None
    diff = paired_difference([runs_a[s] for s in seeds], [runs_b[s] for s in seeds], metric)
    return Comparison(a=a, b=b, fraction=fraction, difference=diff)
