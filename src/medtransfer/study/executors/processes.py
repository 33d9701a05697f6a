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
        bars = ProgressRelay(progress)
        next_slot = 0

        def start() -> None:
            nonlocal next_slot
            inbox = ctx.SimpleQueue()
            p = ctx.Process(target=_worker, args=(next_slot, self.threads, work, inbox, outbox, os.getpid()),
                            daemon=True)
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
                            log(f"↻ {lost.label()}: {reason}; running it again")
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
