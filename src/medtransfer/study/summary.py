"""From recorded trials to answers: the table, the recommended depth and the statistics behind every claim.

The metric is the task's (:class:`~medtransfer.tasks.Metric`), with its direction. The recommendation is made on the
*validation* metric at the largest training fraction by the study's rule (:mod:`medtransfer.study.recommend`: the best
mean, or the one-standard-error rule); ties go to the strategy that trains fewer layers (scratch last). The test split is only used to report: mean test metric over seeds with a case-bootstrap
interval, paired comparisons of the recommended strategy against scratch and its neighbouring depths on the same
test cases, and how much each strategy loses when the training set shrinks. Table columns are named for the metric:
``test_auc``, ``test_auc_low``, ``val_auc``, … or ``test_dice``, ….
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medtransfer.metrics.bootstrap import nanmean, percentile_interval, resample_cases
from medtransfer.metrics.paired import mean_interval, paired_difference
from medtransfer.study.recommend import Choice, choose, validation_evidence
from medtransfer.strategies import by_depth, parse_strategy
from medtransfer.study.store import StudyStore, trial_id
from medtransfer.compat import schema1_columns, schema1_task
from medtransfer.tasks import Metric, Task, task_from_spec


@dataclass
class Comparison:
    a: str
    b: str
    fraction: float
    difference: dict  # value (a − b), ci_low, ci_high, p_value, significant
    higher_is_better: bool = True

    @property
    def a_better(self) -> bool:
        """Whether ``a`` did better than ``b`` (in the metric's direction)."""
        return (self.difference["value"] > 0) == self.higher_is_better

    def sentence(self, metric: str = "AUC") -> str:  # metric as written, e.g. "AUC" or "Dice"
        d = self.difference
        verb = "beat" if self.a_better else "trailed"
        sig = "significant" if d["significant"] else "not significant"
        return (f"{self.a} {verb} {self.b} at {self.fraction:.0%} of the training data by {abs(d['value']):.3f} "
                f"{metric} (95 % CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}, p = {d['p_value']:.3f}, {sig})")


@dataclass
class StudySummary:
    table: pd.DataFrame  # one row per strategy × fraction
    recommended: str | None
    recommended_fraction: float | None
    metric: Metric
    comparisons: list[Comparison] = field(default_factory=list)
    scratch_vs_best: list[Comparison] = field(default_factory=list)  # per fraction: best fine-tuned (by val) vs scratch
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)
    task: str = ""
    notes: list[str] = field(default_factory=list)  # what is inconsistent in the store, and what was left out
    rule: str = "argmax"
    choices: dict[float, Choice] = field(default_factory=dict)  # per fraction: the rule's pick and the evidence
    search: dict | None = None  # layer-wise: where each fraction's chain stopped; halving: the trials it stopped

    def skipped(self, fraction: float | None = None) -> list[str]:
        """The depths a layer-wise search did not train, or whose every trial successive halving stopped at a rung
        (at ``fraction``, or at any fraction), shallow to deep."""
        search = self.search or {}
        names = {s for c in search.get("chains", []) if fraction is None or c["fraction"] == fraction
                 for s in c["skipped"]}
        complete = set(zip(self.table.strategy, self.table.fraction)) if len(self.table) else set()
        names |= {p["strategy"] for p in search.get("pruned", []) if fraction in (None, p["fraction"])
                  and (p["strategy"], p["fraction"]) not in complete}
        return by_depth(names)

    @property
    def metric_label(self) -> str:
        return self.metric.label

    def pick(self, fraction: float, *, pretrained_only: bool = False) -> str | None:
        """The rule's pick at ``fraction`` (among the pre-trained strategies only, if asked)."""
        choice = self.choices.get(fraction)
        if choice is None:
            return None
        if not pretrained_only:
            return choice.pick
        evidence = {k: v for k, v in choice.evidence.items() if k != "scratch"}
        return choose(evidence, self.metric, self.rule).pick

    @property
    def level(self) -> list[str]:
        """The strategies statistically level with the best at the recommendation's fraction (by one validation
        standard error), the recommended one included."""
        choice = self.choices.get(self.recommended_fraction)
        return list(choice.level) if choice else []

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
            "recommended": self.recommended,
            "recommended_at_fraction": self.recommended_fraction,
            "rule": self.rule,
            "level_with_best": self.level,
            "choices": {f"{f:g}": c.to_dict() for f, c in self.choices.items()},
            "search": self.search,
            "table": self.table.to_dict(orient="records"),
            "comparisons": [c.__dict__ | {"sentence": c.sentence(self.metric.label)} for c in self.comparisons],
            "fine_tuning_vs_scratch": [c.__dict__ | {"sentence": c.sentence(self.metric.label)}
                                       for c in self.scratch_vs_best],
            "failed": self.failed.to_dict(orient="records"),
            "notes": self.notes,
        }


def complete_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The finished trials that trained to the end (successive halving's pruned ones stopped at a rung: they are
    neither compared nor kept)."""
    return trials[(trials.status == "done") & (trials.stopped != "pruned")] if len(trials) else trials


class TrialRecords:
    """The recorded trials of a study and their per-case columns, read through the study's task."""

    def __init__(self, store: StudyStore, task: Task):
        self.store, self.task = store, task
        trials = store.trials()
        self.trials = trials
        self.done = complete_trials(trials)
        self.notes: list[str] = []
        self._reference: np.ndarray | None = None  # the test cases most trials were scored on

    def runs(self, strategy: str, fraction: float) -> dict[int, tuple[np.ndarray, dict]]:
        """seed -> (test sample indices, per-case columns) of the finished trials of one cell that were scored on
        the study's test cases; a trial scored on other cases (the data changed under it) is left out and named
        in :attr:`notes`."""
        d = self.done
        out = {}
        for seed in sorted(int(s) for s in d[(d.strategy == strategy) & (d.fraction == fraction)].seed) if len(d) else []:
            tid = trial_id(strategy, fraction, seed)
            rec = self.store.cases(tid, legacy=schema1_columns(self.task))
            if rec is None:
                continue
            if not np.array_equal(rec[0], self.reference):
                note = (f"Trial {strategy} · {fraction:.0%} · seed {seed} was tested on other images than the rest of "
                        f"the study (the data changed while it ran); it is left out of the intervals and comparisons.")
                if note not in self.notes:
                    self.notes.append(note)
                continue
            out[seed] = rec
        return out

    def validation(self, fraction: float) -> dict[str, dict[int, tuple[float, tuple | None]]]:
        """strategy → seed → (validation score, the validation cases' columns or None) of the finished trials at
        ``fraction``, the input of :func:`~medtransfer.study.recommend.validation_evidence`."""
        d = self.done
        cells: dict[str, dict[int, tuple[float, tuple | None]]] = {}
        for row in d[d.fraction == fraction].itertuples() if len(d) else []:
            cells.setdefault(row.strategy, {})[int(row.seed)] = (
                float(row.val_score) if row.val_score is not None else np.nan, self.store.val_cases(row.id))
        return cells

    @property
    def reference(self) -> np.ndarray:
        """The test cases the most finished trials were scored on."""
        if self._reference is None:
            seen: dict[tuple, int] = {}
            for tid in self.done.id if len(self.done) else []:
                rec = self.store.cases(tid, legacy=schema1_columns(self.task))
                if rec is not None:
                    key = tuple(np.asarray(rec[0]).tolist())
                    seen[key] = seen.get(key, 0) + 1
            self._reference = np.asarray(max(seen, key=seen.get)) if seen else np.zeros(0, int)
        return self._reference


def summarize(store: StudyStore, task: Task, rule: str | None = None) -> StudySummary:
    """The study's table, recommendation and comparisons; ``rule``: the recommendation rule (by default the one the
    study was configured with)."""
    rule = rule or store.config().get("recommend") or "argmax"
    records = TrialRecords(store, task)
    trials, done, metric = records.trials, records.done, task.scorer.metric
    failed = trials[trials.status == "failed"][["strategy", "fraction", "seed", "error"]] if len(trials) else trials
    m = metric.name
    rows = []
    for (strategy, fraction), g in done.groupby(["strategy", "fraction"]) if len(done) else []:
        runs = [r[1] for r in records.runs(strategy, fraction).values()]
        ci = mean_interval(runs, metric.statistic) if runs else {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
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
            **{f"test_{o}": float(g[f"test_{o}"].mean()) for o in metric.others if f"test_{o}" in g},
            "seconds": float(g.seconds.mean()),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return StudySummary(table, None, None, metric, failed=failed, task=task.name, notes=records.notes)
    depth = {s: parse_strategy(s).depth_order for s in table.strategy.unique()}
    table = table.sort_values(["fraction", "strategy"], key=lambda c: c.map(depth) if c.name == "strategy" else -c)
    table = table.reset_index(drop=True)

    top = float(table.fraction.max())
    choices = {float(f): choose(validation_evidence(records.validation(f), metric), metric, rule)
               for f in sorted(table.fraction.unique(), reverse=True)}
    best = choices[top].pick
    search = json.loads(store.meta().get("search") or "null")
    summary = StudySummary(table, best, top, metric, failed=failed, task=task.name, notes=records.notes, rule=rule,
                           choices=choices, search=search)

    ordered = by_depth(table[table.fraction == top].strategy)
    i = ordered.index(best)
    others = [s for s in dict.fromkeys(["scratch", *ordered[max(0, i - 1):i], *ordered[i + 1:i + 2]]) if s != best]
    for other in others:
        comparison = _compare(records, best, other, top)
        if comparison:
            summary.comparisons.append(comparison)
    # question 1 at every fraction: the fine-tuned strategy the rule picks on validation against scratch
    for fraction in sorted(table.fraction.unique(), reverse=True):
        if "scratch" not in set(table[table.fraction == fraction].strategy):
            continue
        pick = summary.pick(float(fraction), pretrained_only=True)
        comparison = _compare(records, pick, "scratch", fraction) if pick else None
        if comparison:
            summary.scratch_vs_best.append(comparison)
    return summary


def _compare(records: TrialRecords, a: str, b: str, fraction: float) -> Comparison | None:
    runs_a = records.runs(a, fraction)
    runs_b = records.runs(b, fraction)
    seeds = sorted(set(runs_a) & set(runs_b))
    if not seeds:
        return None
    metric = records.task.scorer.metric
    diff = paired_difference([runs_a[s][1] for s in seeds], [runs_b[s][1] for s in seeds], metric.statistic)
    return Comparison(a=a, b=b, fraction=fraction, difference=diff, higher_is_better=metric.higher_is_better)


# -- robustness to less data -------------------------------------------------------------------------------------------
@dataclass
class Drop:
    """How much a strategy's mean test metric worsens from the largest to the smallest training fraction (in the
    metric's direction: positive is a loss), with a bootstrap CI."""

    value: float
    low: float
    high: float
    top: float
    small: float


def size_drops(records: TrialRecords, scratch: str, tuned: str, top: float, small: float,
               n_resamples: int = 2000) -> tuple[Drop, Drop, dict] | None:
    """Each strategy's loss from ``top`` to ``small``, and the difference of the losses (scratch − tuned) as
    ``{"value", "ci_low", "ci_high"}``.

    All four cells were scored on the same test cases, so one case bootstrap resamples them together; each cell's
    metric is the mean over its seeds. ``None`` when a cell has no records or the test cases differ.
    """
    metric = records.task.scorer.metric
    cells = {(s, f): records.runs(s, f) for s in (scratch, tuned) for f in (top, small)}
    if any(not runs for runs in cells.values()):
        return None
    first = next(iter(next(iter(cells.values())).values()))
    if any(not np.array_equal(r[0], first[0]) for runs in cells.values() for r in runs.values()):
        return None
    idx = resample_cases(len(first[0]), n_resamples, seed=0)
    with np.errstate(all="ignore"):  # a resample with one class only has no AUC
        mean = {k: nanmean([metric.statistic(cols, idx) for _s, cols in runs.values()]) for k, runs in cells.items()}
    loss_s = metric.sign * (mean[(scratch, top)] - mean[(scratch, small)])
    loss_t = metric.sign * (mean[(tuned, top)] - mean[(tuned, small)])

    def drop(draws, s):
        i = percentile_interval(draws)
        return Drop(i["value"], i["ci_low"], i["ci_high"], top=float(mean[(s, top)][0]), small=float(mean[(s, small)][0]))

    return drop(loss_s, scratch), drop(loss_t, tuned), percentile_interval(loss_s - loss_t)


def study_task(store: StudyStore) -> Task:
    """The task of a study, rebuilt from what its store says: the task's spec, stored since schema 2, or for an
    older store its dataset card and configuration."""

    meta = store.meta()
    if meta.get("task"):
        return task_from_spec(json.loads(meta["task"]))
    return schema1_task(meta)
