"""Compare finished searches (``--search layerwise`` or ``halving``) with the grid study of the same settings.

    python benchmarks/search_vs_grid.py GRID_DIR SEARCH_DIR [SEARCH_DIR ...]

For each study: the trials it trained (and how many ran to the end), its summed trial time and the ratio to the
grid's, and per training fraction the strategy it recommends there, that strategy's test metric (in the search's
own trials) and whether it lies inside the 95 % CI of the grid's best test strategy at that fraction. The last lines,
readable by a script, are ``bar time_<search> R`` (trial time over the grid's) and ``bar inside_ci_<search> 0|1``
(every fraction's pick inside the grid's CI).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from medtransfer.study.store import StudyStore
from medtransfer.study.summary import study_task, summarize


def _study(folder: Path):
    store = StudyStore(folder)
    task = study_task(store)
    trials = store.trials()
    search = json.loads(store.meta().get("search") or "null") or {"kind": "grid"}
    return summarize(store, task), trials, search["kind"], task.scorer.metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="the finished grid study")
    parser.add_argument("searches", nargs="+", type=Path, help="finished searches of the same settings")
    args = parser.parse_args()
    grid, grid_trials, _, metric = _study(args.grid)
    m = metric.name
    grid_seconds = float(grid_trials.seconds.sum())
    rows, bars = [], []
    for folder in [args.grid, *args.searches]:
        summary, trials, kind, _ = _study(folder)
        seconds = float(trials.seconds.sum())
        complete = int((trials.stopped != "pruned").sum())
        inside_all = True
        for fraction in sorted(summary.table.fraction.unique(), reverse=True):
            g = grid.table[grid.table.fraction == fraction]
            best = g.loc[g[f"test_{m}"].idxmax() if metric.higher_is_better else g[f"test_{m}"].idxmin()]
            pick = summary.choices[fraction].pick if fraction in summary.choices else None
            t = summary.table[(summary.table.fraction == fraction) & (summary.table.strategy == pick)]
            value = float(t[f"test_{m}"].iloc[0]) if len(t) else float("nan")
            inside = bool(best[f"test_{m}_low"] <= value <= best[f"test_{m}_high"])
            inside_all &= inside
            rows.append({"study": folder.name, "search": kind, "trials": len(trials), "to the end": complete,
                         "trial s": round(seconds), "vs grid": round(seconds / grid_seconds, 3),
                         "fraction": fraction, "pick": pick, f"pick test {m}": round(value, 3),
                         "grid test-best": best.strategy,
                         "its 95 % CI": f"{best[f'test_{m}_low']:.3f}–{best[f'test_{m}_high']:.3f}",
                         "inside": inside})
        if folder != args.grid:
            bars += [f"bar time_{kind} {seconds / grid_seconds:.3f}", f"bar inside_ci_{kind} {int(inside_all)}"]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(pd.DataFrame(rows).to_string(index=False))
    for line in bars:
        print(line)


if __name__ == "__main__":
    main()
