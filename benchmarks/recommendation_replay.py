"""Replay a finished study's trials under each recommendation rule (no retraining) and print their test regret.

    python benchmarks/recommendation_replay.py STUDY_DIR [STUDY_DIR ...]

For every training fraction and every non-empty subset of the seeds, each rule (``argmax``: best mean validation
metric; ``one-se``: the cheapest strategy within one bootstrap standard error of the best) picks a strategy from the
validation records of those seeds alone; the pick's regret is the best mean test metric minus the pick's, over the
same seeds (:mod:`medtransfer.study.replay`). Prints the picks and the mean regret per rule and fraction; the last
lines, readable by a script, are ``bar regret_<rule> X`` (the mean over every fraction of every study given).

Standard errors come from per-validation-case records (studies from this version on) or, for older studies, from the
seeds' spread; a study with one seed and no case records has none, and ``one-se`` is then ``argmax``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from medtransfer.study.recommend import RULES
from medtransfer.study.replay import regret_table, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="finished study folders")
    args = parser.parse_args()
    means = []
    for folder in args.studies:
        rows = replay(folder)
        print(f"\n== {folder} ({rows.seeds.nunique()} seed subsets per fraction; standard errors from: "
              f"{', '.join(sorted(set(rows.se_from)))})")
        picks = rows.pivot_table(index=["fraction", "seeds"], columns="rule", values="pick", aggfunc="first")
        best = rows.groupby(["fraction", "seeds"]).first()[[c for c in rows.columns if c.startswith("best_")]]
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(picks.join(best).sort_index(ascending=[False, True]).to_string())
            table = regret_table(rows)
            print("\nmean test regret (best test metric − the pick's), per fraction:")
            print(table.round(4).to_string())
        means.append(table["mean"])
    overall = pd.concat(means, axis=1).mean(axis=1)
    for rule in RULES:
        print(f"bar regret_{rule} {overall[rule]:.4f}")


if __name__ == "__main__":
    main()
