"""Trials in the runner's own process, one after another."""

from __future__ import annotations

from medtransfer.study.executors.base import Executor, plural


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
