"""Where a study's trials run.

The runner plans the trials and is the only writer of the study's store; an executor runs them and hands each
finished trial's :class:`TrialReport` back to it, in the order they finish. A trial's work is the same function
whatever runs it (``work(trial, progress) -> TrialReport``): it trains and tests, stages its candidate model folder,
and returns plain values. So a store written by one executor resumes with another, and a trial's numbers do not
depend on the executor (up to the rounding of its thread count: the same thread count gives the same numbers).

- :class:`LocalExecutor` (``local``, the default): in this process, one trial after another.
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

import os
import queue as queue_module
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medtransfer.errors import ConfigError, parameter_error

EXECUTORS = ("local", "processes", "ray")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass
class TrialReport:
    """What one finished (or failed) trial hands to the runner: the store record's fields, the folder its worker
    saved the trial's model in for the runner to keep or drop (None: no model), and the line to log."""

    trial: Any  # runner.Trial
    record: dict
    staged: str | None = None
    line: str = ""


Work = Callable[[Any, Any], TrialReport]  # (trial, progress or None) -> report
Accept = Callable[[TrialReport], None]


class Executor:
    """Runs trials and hands their reports to ``accept`` (in the calling process) as they finish."""

    name = "executor"

    def where(self, device: str) -> str:
        """How the report's set-up section names the place a trial ran (stored with each trial)."""
        return device

    def run(self, trials: list, work: Work, accept: Accept, *, progress=None, log=print,
            failed: Callable[[Any, str], None] | None = None) -> None:
        raise NotImplementedError


class LocalExecutor(Executor):
    """One trial after another in this process (with ``threads`` torch threads, when given)."""

    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def where(self, device: str) -> str:
        import torch

        return f"{device} · local, {plural(self.threads or torch.get_num_threads(), 'thread')}"

    def run(self, trials, work, accept, *, progress=None, log=print, failed=None) -> None:
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for trial in trials:
                accept(work(trial, progress))
        finally:
            torch.set_num_threads(before)


class _RemoteProgress:
    """A stand-in for a rich Progress inside a worker: every call becomes a message to the runner, which draws the
    bars (each prefixed with its trial)."""

    def __init__(self, send: Callable[[tuple], None], slot: int):
        self._send, self._slot, self._next = send, slot, 0

    def add_task(self, description: str, total=None, **kwargs) -> int:
        self._next += 1
        self._send(("progress", self._slot, "add", self._next, {"description": description, "total": total, **kwargs}))
        return self._next

    def update(self, task: int, **kwargs) -> None:
        self._send(("progress", self._slot, "update", task, kwargs))

    def advance(self, task: int, advance: float = 1) -> None:
        self._send(("progress", self._slot, "update", task, {"advance": advance}))

    def remove_task(self, task: int) -> None:
        self._send(("progress", self._slot, "remove", task, {}))


class _Bars:
    """The runner's side of the workers' progress messages: one rich task per worker task, named by its trial."""

    def __init__(self, progress):
        self.progress, self.tasks, self.labels = progress, {}, {}

    def message(self, slot: int, op: str, task: int, kwargs: dict) -> None:
        if self.progress is None:
            return
        key = (slot, task)
        label = self.labels.get(slot, "")
        if "description" in kwargs and kwargs["description"] is not None:
            kwargs = {**kwargs, "description": f"{label} · {kwargs['description']}" if label else kwargs["description"]}
        if op == "add":
            self.tasks[key] = self.progress.add_task(**kwargs)
        elif op == "update" and key in self.tasks:
            self.progress.update(self.tasks[key], **kwargs)
        elif op == "remove" and key in self.tasks:
            self.progress.remove_task(self.tasks.pop(key))

    def drop(self, slot: int) -> None:
        """A worker's bars, when it has died or finished its trial."""
        for key in [k for k in self.tasks if k[0] == slot]:
            if self.progress is not None:
                self.progress.remove_task(self.tasks.pop(key))


def _worker(slot: int, threads: int, work: Work, inbox, outbox) -> None:
    """A worker process: runs the trials it is sent until it is sent ``None``."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle: it stops the workers
    torch.set_num_threads(threads)
    progress = _RemoteProgress(outbox.put, slot)
    while True:
        trial = inbox.get()
        if trial is None:
            return
        outbox.put(("started", slot, trial, os.getpid()))
        try:
            report = work(trial, progress)
        except BaseException as e:  # a storage error or a bug outside the trial: the runner stops the study
            outbox.put(("crashed", slot, trial, f"{type(e).__name__}: {e}"))
            return
        outbox.put(("done", slot, trial, report))


@dataclass
class _Slot:
    process: Any
    inbox: Any
    trial: Any = None
    pid: int | None = None


class ProcessExecutor(Executor):
    """``workers`` processes on this machine, each with ``threads`` torch threads (see the module docstring)."""

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int = 1, retries: int = 1):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = int(threads)
        self.workers = int(workers) if workers else max(1, cores // self.threads)
        self.retries = int(retries)
        self.on_start: Callable[[Any, int], None] | None = None  # (trial, worker pid): for tests and logs

    def where(self, device: str) -> str:
        return f"{device} · processes, {plural(self.workers, 'worker')} × {plural(self.threads, 'thread')}"

    def run(self, trials, work, accept, *, progress=None, log=print, failed=None) -> None:
        import multiprocessing as mp

        if "fork" not in mp.get_all_start_methods():
            raise ConfigError("the processes executor needs fork (Linux, macOS); use --executor local or ray")
        if str(getattr(work, "device", "cpu")).startswith("cuda"):
            # CUDA cannot be used in a process forked after the runner used it (to build the prefix cache)
            raise ConfigError("the processes executor is for CPUs; on GPUs use --executor ray (with --gpus-per-trial "
                              "0.5 to share one GPU between two trials) or local")
        ctx = mp.get_context("fork")
        outbox = ctx.Queue()
        waiting, attempts = deque(trials), {}
        slots: dict[int, _Slot] = {}
        bars = _Bars(progress)
        next_slot = 0

        def start() -> None:
            nonlocal next_slot
            inbox = ctx.SimpleQueue()
            p = ctx.Process(target=_worker, args=(next_slot, self.threads, work, inbox, outbox), daemon=True)
            p.start()
            slots[next_slot] = _Slot(p, inbox)
            next_slot += 1

        def handle(msg) -> None:
            kind, slot = msg[0], msg[1]
            if kind == "progress":
                bars.message(slot, *msg[2:])
            elif kind == "started":
                slots[slot].pid = msg[3]
                bars.labels[slot] = msg[2].label()
                if self.on_start is not None:
                    self.on_start(msg[2], msg[3])
            elif kind == "done":
                bars.drop(slot)
                slots[slot].trial = None
                accept(msg[3])
            elif kind == "crashed":
                raise RuntimeError(f"worker {slot} stopped on {msg[2].label()}: {msg[3]}")

        for _ in range(min(self.workers, len(waiting))):
            start()
        try:
            while waiting or any(s.trial is not None for s in slots.values()):
                for s in slots.values():
                    if s.trial is None and waiting and s.process.is_alive():
                        s.trial = waiting.popleft()
                        s.inbox.put(s.trial)
                try:
                    handle(outbox.get(timeout=0.2))
                    continue
                except queue_module.Empty:
                    pass
                for slot, s in list(slots.items()):
                    if s.process.is_alive():
                        continue
                    while True:  # what it said before it died comes first
                        try:
                            handle(outbox.get_nowait())
                        except queue_module.Empty:
                            break
                    lost = s.trial
                    del slots[slot]
                    bars.drop(slot)
                    if lost is not None:
                        attempts[lost.id] = attempts.get(lost.id, 0) + 1
                        reason = f"its worker process (pid {s.pid}) died (exit code {s.process.exitcode})"
                        if attempts[lost.id] <= self.retries:
                            log(f"[yellow]↻[/yellow] {lost.label()}: {reason}; running it again")
                            waiting.appendleft(lost)
                        elif failed is not None:
                            failed(lost, f"{reason}, {attempts[lost.id]} times")
                    if waiting and len(slots) < self.workers:
                        start()
        finally:
            for s in slots.values():
                if s.process.is_alive():
                    s.process.terminate()
            for s in slots.values():
                s.process.join(timeout=10)
                if s.process.is_alive():
                    s.process.kill()
            outbox.close()
            for slot in list(bars.labels):
                bars.drop(slot)


def make_executor(name: str = "local", *, workers: int | None = None, threads: int | None = None,
                  ray_address: str | None = None, gpus_per_trial: float | None = None) -> Executor:
    """The executor ``name`` (``local``, ``processes`` or ``ray``) with its settings, checked."""
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
    if workers is not None and name != "processes":
        raise ConfigError(f"--workers is for the processes executor, not {name}")
    if ray_address is not None and name != "ray":
        raise ConfigError(f"--ray-address is for the ray executor, not {name}")
    if name == "local":
        return LocalExecutor(threads)
    if name == "processes":
        return ProcessExecutor(workers, threads or 1)
    from medtransfer.study.ray_executor import RayExecutor

    return RayExecutor(ray_address, threads or 1, gpus_per_trial)
