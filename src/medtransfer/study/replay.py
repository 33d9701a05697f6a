"""Measure the recommendation rules on a finished study, without training anything.

For each training fraction and each non-empty subset of the seeds every strategy ran, each rule picks a strategy from
the *validation* records of that subset alone (:mod:`medtransfer.study.recommend`), and the pick is scored by its
mean *test* metric over the same seeds. The **regret** of a pick is the best strategy's mean test metric minus the
pick's (in the metric's direction: ≥ 0, 0 when the rule found the test-best strategy). A rule that chases validation
noise has a larger mean regret than one that does not.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.study.recommend import RULES, choose, validation_evidence
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import TrialRecords, study_task


def replay(folder: str | Path, rules: tuple[str, ...] = RULES) -> pd.DataFrame:
    """One row per (fraction, seed subset, rule): the pick, its test metric, the best test metric and the regret,
    and where the standard errors came from (``cases``, ``seeds`` or ``none``)."""
    store = StudyStore(folder)
    store.check()
    task = study_task(store)
    metric = task.scorer.metric
    records = TrialRecords(store, task)
    done = records.done
    test = f"test_{metric.name}"
    rows = []
    for fraction in sorted(done.fraction.unique(), reverse=True):
        cells = records.validation(float(fraction))
        at = done[done.fraction == fraction]
        seeds = sorted(set.intersection(*(set(int(s) for s in at[at.strategy == st].seed) for st in cells)))
        tests = {(r.strategy, int(r.seed)): float(getattr(r, test)) for r in at.itertuples()}
        for size in range(1, len(seeds) + 1):
            for subset in itertools.combinations(seeds, size):
                sub = {st: {s: runs[s] for s in subset} for st, runs in cells.items()}
                evidence = validation_evidence(sub, metric)
                mean_test = {st: float(np.mean([tests[(st, s)] for s in subset])) for st in sub}
                best = max(mean_test.values()) if metric.higher_is_better else min(mean_test.values())
                sources = ",".join(sorted({e.source for e in evidence.values()}))
                for rule in rules:
                    pick = choose(evidence, metric, rule).pick
                    rows.append({"fraction": float(fraction), "seeds": ",".join(map(str, subset)), "rule": rule,
                                 "pick": pick, f"pick_{test}": mean_test[pick], f"best_{test}": best,
                                 "regret": metric.sign * (best - mean_test[pick]), "se_from": sources})
    return pd.DataFrame(rows)


def regret_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean regret per rule and fraction (each seed-subset size weighted alike), and over all fractions."""
    per_size = rows.assign(size=rows.seeds.str.count(",") + 1).groupby(["rule", "fraction", "size"]).regret.mean()
    by_fraction = per_size.groupby(["rule", "fraction"]).mean().unstack("fraction")
    by_fraction = by_fraction[sorted(by_fraction.columns, reverse=True)]
    by_fraction["mean"] = by_fraction.mean(axis=1)
    return by_fraction
