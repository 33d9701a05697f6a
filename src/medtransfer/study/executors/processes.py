"""Trials in worker processes forked from the runner (see the package docstring)."""

from __future__ import annotations

import os
import queue as queue_module
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medtransfer.errors import ConfigError
from medtransfer.study.executors.base import Executor, ProgressRelay, RemoteProgress, Work, available_cores, plural


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this worker when the runner dies, even by SIGKILL, so that no trial goes on
    training unseen after its study was killed (elsewhere the worker ends at its next message to the runner)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the runner died before the request was made
        os._exit(1)


def _worker(slot: int, threads: int, work: Work, inbox, outbox, parent: int) -> None:
    """A worker process: runs the trials it is sent until it is sent ``None``."""
    import torch

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle: it stops the workers
    torch.set_num_threads(threads)
    progress = RemoteProgress(outbox.put, slot)
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
        cores = available_cores()
        self.threads = int(threads)
        self.workers = int(workers) if workers else max(1, cores // self.threads)
        self.retries = int(retries)
        self.on_start: Callable[[Any, int], None] | None = None  # (trial, worker pid): for tests and logs

    @property
    def width(self) -> int:
        return self.workers

    def where(self, device: str) -> str:
        return f"{device} · processes, {plural(self.workers, 'worker')} × {plural(self.threads, 'thread')}"

    def run(self, trials, work, accept, *, progress=None, log=print, failed=None) -> None:
        pool = _WorkerPool(_fork_context(work), self, work, accept, ProgressRelay(progress))
        waiting, attempts = deque(trials), {}
        for _ in range(min(self.workers, len(waiting))):
            pool.start()
        try:
            while waiting or pool.busy():
                pool.hand_out(waiting)
                if pool.handle_next(timeout=0.2):
                    continue
                for slot, s in list(pool.slots.items()):
                    if s.process.is_alive():
                        continue
                    pool.bury(slot)
                    if s.trial is not None:
                        self._lost(s, waiting, attempts, log, failed)
                    if waiting and len(pool.slots) < self.workers:
                        pool.start()
        finally:
            pool.close()

    def _lost(self, s: _Slot, waiting: deque, attempts: dict, log, failed) -> None:
        """The trial of a worker that died runs again, up to ``retries`` times; then it is recorded as failed."""
        lost = s.trial
        attempts[lost.id] = attempts.get(lost.id, 0) + 1
        reason = f"its worker process (pid {s.pid}) died (exit code {s.process.exitcode})"
        if attempts[lost.id] <= self.retries:
            log(f"↻ {lost.label()}: {reason}; running it again")
            waiting.appendleft(lost)
        elif failed is not None:
            failed(lost, f"{reason}, {attempts[lost.id]} times")


def _fork_context(work: Work):
    """The ``fork`` start method, refused where it is missing or where the trials would use CUDA."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        raise ConfigError("the processes executor needs fork (Linux, macOS); use --executor local or ray")
    if str(getattr(work, "device", "cpu")).startswith("cuda"):
        # CUDA cannot be used in a process forked after the runner used it (to build the prefix cache)
        raise ConfigError("the processes executor is for CPUs; on GPUs use --executor ray (with --gpus-per-trial "
                          "0.5 to share one GPU between two trials) or local")
    return mp.get_context("fork")


class _WorkerPool:
    """The runner's side of the worker processes: starting them, handing them trials, reading what they say and
    cleaning up after the ones that died."""

    def __init__(self, ctx, executor: ProcessExecutor, work: Work, accept, bars: ProgressRelay):
        self.ctx, self.executor, self.work, self.accept, self.bars = ctx, executor, work, accept, bars
        self.outbox = ctx.Queue()
        self.slots: dict[int, _Slot] = {}
        self.next_slot = 0

    def start(self) -> None:
        inbox = self.ctx.SimpleQueue()
        args = (self.next_slot, self.executor.threads, self.work, inbox, self.outbox, os.getpid())
        p = self.ctx.Process(target=_worker, args=args, daemon=True)
        p.start()
        self.slots[self.next_slot] = _Slot(p, inbox)
        self.next_slot += 1

    def busy(self) -> bool:
        return any(s.trial is not None for s in self.slots.values())

    def hand_out(self, waiting: deque) -> None:
        """A waiting trial to every idle worker that is alive."""
        for s in self.slots.values():
            if s.trial is None and waiting and s.process.is_alive():
                s.trial = waiting.popleft()
                s.inbox.put(s.trial)

    def handle_next(self, timeout: float) -> bool:
        """Handle the next message, if one comes within ``timeout`` seconds."""
        try:
            self.handle(self.outbox.get(timeout=timeout))
        except queue_module.Empty:
            return False
        return True

    def handle(self, msg) -> None:
        kind, slot = msg[0], msg[1]
        if kind == "progress":
            self.bars.message(slot, *msg[2:])
        elif kind == "started":
            self.slots[slot].pid = msg[3]
            self.bars.labels[slot] = msg[2].label()
            if self.executor.on_start is not None:
                self.executor.on_start(msg[2], msg[3])
        elif kind == "done":
            self.bars.drop(slot)
            self.slots[slot].trial = None
            self.accept(msg[3])
        elif kind == "crashed":
            raise RuntimeError(f"worker {slot} stopped on {msg[2].label()}: {msg[3]}")

    def bury(self, slot: int) -> None:
        """Forget a dead worker, after handling what it said before it died."""
        while True:
            try:
                self.handle(self.outbox.get_nowait())
            except queue_module.Empty:
                break
        del self.slots[slot]
        self.bars.drop(slot)

    def close(self) -> None:
        """Stop every worker (politely, then by force) and remove their progress bars."""
        for s in self.slots.values():
            if s.process.is_alive():
                s.process.terminate()
        for s in self.slots.values():
            s.process.join(timeout=10)
            if s.process.is_alive():
                s.process.kill()
        self.outbox.close()
        for slot in list(self.bars.labels):
            self.bars.drop(slot)
