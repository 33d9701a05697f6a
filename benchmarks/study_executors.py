"""The same study grid through each executor, one after the other in one run: wall time, trials per minute, and
whether the results agree.

    python benchmarks/study_executors.py [--data breastmnist] [--executors local,processes] [--workers 2]
                                         [--threads-per-worker 1] [--local-threads 2] [--fractions 1,0.25]
                                         [--spread-seed 1]

By default the demo's grid (BreastMNIST, every strategy, 100 % and 25 % of the training split, one seed, 80 px,
14 epochs with early stopping) with ``local`` (one process, ``--local-threads`` torch threads) and then
``processes`` (``--workers`` × ``--threads-per-worker``); ``ray`` can be added (a local Ray with as many CPUs as
workers × threads). Each executor writes a fresh study folder in a temporary directory, so no trial is reused.
Wall time covers the whole study (decoding, the frozen-prefix cache, every trial, the summary). The results table
compares each executor's trials with the first one's: the largest difference in validation and test metric, and
whether the recommendation is the same.

The tolerance. With equal thread counts the numbers are identical to the last bit (the tests assert it). With
different thread counts they are not: in training mode the channels-last BatchNorm statistics and oneDNN's weight
gradients split their sums by thread, so the first training step already differs in the last bits, and training
amplifies that the way it amplifies a change of seed. So the stated tolerance is the seed-to-seed spread: the grid is
run once more through the last executor with seed ``--spread-seed`` (``-1`` skips it), and the second table sets, per
trial, the executors' difference beside the difference that the seed makes. "within" means: the median and the mean
difference between executors are no larger than those between seeds (the largest of 20 differences is printed too,
but one seed pair estimates it poorly), with a one-sided Mann-Whitney test of "the executors differ less"; and
the recommendations are printed side by side.
The last lines, ``tolerance …`` and ``bar processes_vs_local R`` (local wall time / processes wall time), can be read
by a script.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from medtransfer.study import Study
from medtransfer.study.demo import demo_config
from medtransfer.study.executors import LocalExecutor, ProcessExecutor
from medtransfer.study.executors.base import available_cores


def make(name: str, args):
    if name == "local":
        return LocalExecutor(threads=args.local_threads)
    if name == "processes":
        return ProcessExecutor(args.workers, threads=args.threads_per_worker)
    if name == "ray":
        from medtransfer.study.executors.ray_tasks import RayExecutor

        return RayExecutor(threads=args.threads_per_worker, num_cpus=args.workers * args.threads_per_worker)
    raise SystemExit(f"unknown executor {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breastmnist")
    parser.add_argument("--executors", default="local,processes")
    cores = available_cores()
    parser.add_argument("--workers", type=int, default=cores)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--local-threads", type=int, default=cores)
    parser.add_argument("--fractions", default=None, help="e.g. 1 (default: the demo's)")
    parser.add_argument("--spread-seed", type=int, default=1, help="seed of the spread run; -1 skips it")
    args = parser.parse_args()

    config = demo_config(args.data)
    if args.fractions:
        config.fractions = sorted((float(f) for f in args.fractions.split(",")), reverse=True)
    console = Console(width=200)  # the table is wide; a log file must not truncate it
    rows, tables = [], {}
    with tempfile.TemporaryDirectory(prefix="executors-") as tmp:
        for name in args.executors.split(","):
            executor = make(name, args)
            study = Study(config, Path(tmp) / name, device="cpu", executor=executor)
            started = time.perf_counter()
            summary = study.run(log=lambda line: console.print(f"  [{name}] {line}"))
            wall = time.perf_counter() - started
            trials = study.results().sort_values("id").reset_index(drop=True)
            tables[name] = (trials, summary.recommended)
            rows.append((name, executor.where("cpu"), wall, len(trials), 60 * len(trials) / wall,
                         float(trials.seconds.sum())))
        spread = None
        if args.spread_seed >= 0:
            name = rows[-1][0]
            config.seeds = [args.spread_seed]
            study = Study(config, Path(tmp) / f"{name}-seed{args.spread_seed}", device="cpu", executor=make(name, args))
            picked = study.run(log=lambda line: console.print(f"  [{name} · seed {args.spread_seed}] {line}"))
            spread = (study.results(), picked.recommended)

    metric = [c for c in tables[rows[0][0]][0].columns if c.startswith("test_") and not c.endswith(("_low", "_high"))][0]
    table = Table(title=f"study executors · {args.data} · {rows[0][3]} trials")
    for col in ("executor", "where", "wall (s)", "trials", "trials / min", "trial time (s)", "max |Δ val|",
                f"max |Δ {metric}|", "recommendation"):
        table.add_column(col, justify="left" if col in ("executor", "where", "recommendation") else "right")
    ref_trials, ref_pick = tables[rows[0][0]]
    for name, where, wall, n, per_min, trial_time in rows:
        trials, pick = tables[name]
        same = list(trials.id) == list(ref_trials.id)
        dval = np.nanmax(np.abs(trials.val_score.to_numpy(float) - ref_trials.val_score.to_numpy(float))) if same else np.nan
        dtest = np.nanmax(np.abs(trials[metric].to_numpy(float) - ref_trials[metric].to_numpy(float))) if same else np.nan
        table.add_row(name, where, f"{wall:.0f}", str(n), f"{per_min:.2f}", f"{trial_time:.0f}", f"{dval:.4f}",
                      f"{dtest:.4f}", f"{pick}" + ("" if pick == ref_pick else " (differs)"))
    console.print(table)
    if spread is not None and len(rows) > 1:
        tolerance(console, metric, rows[0][0], rows[-1][0], tables, spread, args.spread_seed)
    walls = {name: wall for name, _w, wall, *_ in rows}
    if "local" in walls and "processes" in walls:
        print(f"bar processes_vs_local {walls['local'] / walls['processes']:.3f}")


def tolerance(console, metric: str, first: str, last: str, tables, spread_run, seed: int) -> None:
    """Per trial: the two executors' difference in validation and test metric, beside the difference a change of
    seed makes; then whether the executors' differences stay within the seeds' (median and largest)."""
    key = ["strategy", "fraction"]
    spread, spread_pick = spread_run
    frames = [tables[first][0].set_index(key), tables[last][0].set_index(key), spread.set_index(key)]
    cells = frames[0].index.intersection(frames[1].index).intersection(frames[2].index)
    table = Table(title="executors vs seeds, per trial")
    table.add_column("strategy")
    table.add_column("fraction", justify="right")
    lines, verdicts = [], []
    for column in ("val_score", metric):
        a, b, c = (f.loc[cells, column].astype(float) for f in frames)
        d_exec, d_seed = (b - a).abs(), (c - b).abs()
        for title, values in ((f"{column} {first}", a), (f"{last}", b), (f"seed {seed}", c),
                              ("|Δ executors|", d_exec), ("|Δ seeds|", d_seed)):
            table.add_column(title, justify="right")
            for i, v in enumerate(values):
                lines.append((i, f"{v:.3f}"))
        from scipy.stats import mannwhitneyu

        within = d_exec.median() <= d_seed.median() and d_exec.mean() <= d_seed.mean()
        smaller = mannwhitneyu(d_exec, d_seed, alternative="less").pvalue
        verdicts.append(f"tolerance {column} |Δ| executors median {d_exec.median():.4f} mean {d_exec.mean():.4f} "
                        f"max {d_exec.max():.4f} · seeds median {d_seed.median():.4f} mean {d_seed.mean():.4f} max "
                        f"{d_seed.max():.4f} · executors' smaller (one-sided Mann-Whitney) p = {smaller:.4f} · "
                        f"{'within' if within else 'OUTSIDE'}")
    for i, cell in enumerate(cells):
        table.add_row(cell[0], f"{cell[1]:g}", *[text for j, text in lines if j == i])
    console.print(table)
    print("\n".join(verdicts))
    print(f"recommendation {first} {tables[first][1]} · {last} {tables[last][1]} · "
          f"{last} seed {seed} {spread_pick}")


if __name__ == "__main__":
    main()
