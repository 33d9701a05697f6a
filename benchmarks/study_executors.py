"""The same study grid through each executor, one after the other in one run: wall time, trials per minute, and
whether the results agree.

    python benchmarks/study_executors.py [--data breastmnist] [--executors local,processes] [--workers 2]
                                         [--threads-per-worker 1] [--local-threads 2] [--fractions 1,0.25]

By default the demo's grid (BreastMNIST, every strategy, 100 % and 25 % of the training split, one seed, 80 px,
14 epochs with early stopping) with ``local`` (one process, ``--local-threads`` torch threads) and then
``processes`` (``--workers`` × ``--threads-per-worker``); ``ray`` can be added (a local Ray with as many CPUs as
workers × threads). Each executor writes a fresh study folder in a temporary directory, so no trial is reused.
Wall time covers the whole study (decoding, the frozen-prefix cache, every trial, the summary). The results table
compares each executor's trials with the first one's: the largest difference in validation and test metric, and
whether the recommendation is the same. With equal thread counts the numbers are identical (the tests assert it);
with different thread counts float reductions round differently and training amplifies it, which the table shows.
The last line, ``bar processes_vs_local R``, is local wall time / processes wall time.
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
    walls = {name: wall for name, _w, wall, *_ in rows}
    if "local" in walls and "processes" in walls:
        print(f"bar processes_vs_local {walls['local'] / walls['processes']:.3f}")


if __name__ == "__main__":
    main()
