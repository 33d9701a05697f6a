"""Replay the layer-wise search on a finished grid study: which trials it would train, and their recorded time.

    python benchmarks/layerwise_replay.py GRID_DIR [--width 2] [--patience-depth 2]

The layer-wise search (:class:`~medtransfer.study.search.LayerwiseSearch`) is a function of the finished trials: each
round it reads their validation records and names the next trials. A trial's numbers do not depend on the round it
ran in (same settings, strategy, fraction and seed: the same run), so the search can be driven on the grid's own
records: start with none finished, ask the search for a round of ``--width`` trials (the executor's width: 2 on a
2-core CPU), take those trials' records from the grid, repeat until it plans nothing. What this gives is exactly the
set of trials a real ``--search layerwise`` run trains, with the seconds they took in the grid (all trials there ran
with the same workers and threads); what it leaves out is only the real run's own overhead (loading the data and
the cache of frozen layers once, as the grid does too).

Prints the rounds, where each fraction's chain stopped, the trials and trial time against the grid's, and per
fraction the strategy the study's rule picks among the trials trained, its test metric and whether it lies inside
the 95 % CI of the grid's best test strategy. The last lines, readable by a script: ``bar time_layerwise_replay R``
and ``bar inside_ci_layerwise_replay 0|1``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from medtransfer.strategies import by_depth
from medtransfer.study.recommend import choose, validation_evidence
from medtransfer.study.search import ANCHORS, LayerwiseSearch, describe_chains
from medtransfer.study.store import StudyStore, trial_id
from medtransfer.study.summary import TrialRecords, study_task, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="a finished grid study (every strategy at every fraction and seed)")
    parser.add_argument("--width", type=int, default=2, help="trials per round (the executor's width; default 2)")
    parser.add_argument("--patience-depth", type=int, default=2, help="as the study's --patience-depth (default 2)")
    parser.add_argument("--rule", default=None, help="recommendation rule (default: the study's)")
    parser.add_argument("--fractions", default=None,
                        help="comma-separated training fractions to replay (default: every fraction of the grid)")
    args = parser.parse_args()

    store = StudyStore(args.grid)
    store.check()
    task = study_task(store)
    metric, m = task.scorer.metric, task.scorer.metric.name
    records = TrialRecords(store, task)
    done = records.done
    seconds = {r.id: float(r.seconds) for r in done.itertuples()}
    fractions = sorted((float(f) for f in (args.fractions.split(",") if args.fractions else done.fraction.unique())),
                       reverse=True)
    seeds = sorted(int(s) for s in done.seed.unique())
    chain = [s for s in by_depth(done.strategy.unique()) if s not in ANCHORS]
    grid = [trial_id(s, f, seed) for s in [*ANCHORS, *chain] for f in fractions for seed in seeds]
    missing = [t for t in grid if t not in seconds]
    if missing:
        raise SystemExit(f"{args.grid} is not a finished grid: {len(missing)} trials missing, e.g. {missing[0]}")

    search = LayerwiseSearch(chain, fractions, seeds, metric, args.patience_depth)
    trained: set[str] = set()
    finished = (lambda s, f, seed: trial_id(s, f, seed) in trained)
    rounds = 0
    while todo := search.next_round(records.validation, finished, width=args.width):
        rounds += 1
        print(f"round {rounds:2d}: " + ", ".join(f"{s}·{f:.0%}·{seed}" for s, f, seed in todo))
        trained |= {trial_id(*t) for t in todo}
    chains = [st.__dict__ for st in search.states(records.validation, finished)]
    print("\n" + describe_chains(chains))

    grid_seconds = sum(seconds[t] for t in grid)
    replay_seconds = sum(seconds[t] for t in trained)
    rule = args.rule or store.config().get("recommend") or "argmax"
    table = summarize(store, task).table
    rows, inside_all = [], True
    for f in fractions:
        cells = {s: runs for s, runs in records.validation(f).items()
                 if all(trial_id(s, f, seed) in trained for seed in runs)}
        pick = choose(validation_evidence(cells, metric), metric, rule).pick
        at = table[table.fraction == f]
        best = at.loc[at[f"test_{m}"].idxmax() if metric.higher_is_better else at[f"test_{m}"].idxmin()]
        value = float(at[at.strategy == pick][f"test_{m}"].iloc[0])
        inside = bool(best[f"test_{m}_low"] <= value <= best[f"test_{m}_high"])
        inside_all &= inside
        rows.append({"fraction": f, "trained": sum(1 for s in cells), "pick": pick, f"pick test {m}": round(value, 3),
                     "grid test-best": best.strategy,
                     "its 95 % CI": f"{best[f'test_{m}_low']:.3f}–{best[f'test_{m}_high']:.3f}", "inside": inside})
    print(f"\nrule: {rule}; trials {len(trained)} of {len(grid)}; trial time {replay_seconds:.0f} s of "
          f"{grid_seconds:.0f} s ({replay_seconds / grid_seconds:.3f} of the grid's); rounds {rounds}\n")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"bar time_layerwise_replay {replay_seconds / grid_seconds:.3f}")
    print(f"bar inside_ci_layerwise_replay {int(inside_all)}")


if __name__ == "__main__":
    main()
