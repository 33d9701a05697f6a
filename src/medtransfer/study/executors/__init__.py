"""Where a study's trials run.

The runner plans the trials and is the only writer of the study's store; an executor runs them and hands each
finished trial's :class:`TrialReport` back to it, in the order they finish. A trial's work is the same function
whatever runs it (``work(trial, progress) -> TrialReport``): it trains and tests, stages its candidate model folder,
and returns plain values. So a store written by one executor resumes with another, and a trial's numbers do not
depend on the executor (up to the rounding of its thread count: the same thread count gives the same numbers).

- :class:`AutoExecutor` (``auto``, the default): ``processes`` with one single-threaded worker per core on a CPU
  with two or more cores, ``local`` otherwise (a GPU, one core, a round of one trial).
- :class:`LocalExecutor` (``local``): in this process, one trial after another.
- :class:`ProcessExecutor` (``processes``): N worker processes on this machine, forked from the runner once the
  images are decoded and the frozen-prefix cache is built, so that every worker reads the same pages of both (copy
  on write; a spilled cache is one memory-mapped file for all) instead of N copies. Each worker runs with its own
  thread count. A worker that dies mid-trial loses that trial only: it is run again (up to ``retries`` times, then
  recorded as failed with the reason) on a new worker, and the study finishes.
- :class:`RayExecutor` (``ray``): trials as Ray tasks on an existing cluster (``address``) or on a local Ray started
  for the study. See its docstring for how the data reach the workers.

Ctrl-C stops every worker; the store keeps the trials that finished, and the same command resumes the rest.
"""

from __future__ import annotations

from medtransfer.errors import ConfigError, parameter_error
from medtransfer.study.executors.auto import AutoExecutor
from medtransfer.study.executors.base import Executor, TrialReport
from medtransfer.study.executors.local import LocalExecutor
from medtransfer.study.executors.processes import ProcessExecutor

EXECUTORS = ("auto", "local", "processes", "ray")


def make_executor(name: str = "auto", *, workers: int | None = None, threads: int | None = None,
                  ray_address: str | None = None, gpus_per_trial: float | None = None,
                  device: str = "cpu") -> Executor:
    """The executor ``name`` (``auto``, ``local``, ``processes`` or ``ray``) with its settings, checked; ``auto``
    decides for ``device``."""
    problems = []
    if name not in EXECUTORS:
        problems.append(parameter_error("executor", "a study", f"one of {', '.join(EXECUTORS)}", name))
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        problems.append(parameter_error("workers", "a study", "an integer ≥ 1", workers))
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        problems.append(parameter_error("threads_per_worker", "a study", "an integer ≥ 1", threads))
    if gpus_per_trial is not None and not 0 < gpus_per_trial <= 8:
        problems.append(parameter_error("gpus_per_trial", "a study", "a number in (0, 8]", gpus_per_trial))
    if problems:
        raise ConfigError("\n".join(problems))
    if workers is not None and name not in ("processes", "auto"):
        raise ConfigError(f"--workers is for the processes executor, not {name}")
    if ray_address is not None and name != "ray":
        raise ConfigError(f"--ray-address is for the ray executor, not {name}")
    if name == "auto":
        return AutoExecutor(device, workers, threads)
    if name == "local":
        return LocalExecutor(threads)
    if name == "processes":
        return ProcessExecutor(workers, threads or 1)
    from medtransfer.study.executors.ray_tasks import RayExecutor

    return RayExecutor(ray_address, threads or 1, gpus_per_trial)


__all__ = ["EXECUTORS", "AutoExecutor", "Executor", "LocalExecutor", "ProcessExecutor", "TrialReport", "make_executor"]
