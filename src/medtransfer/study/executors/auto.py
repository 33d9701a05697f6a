"""The default executor: worker processes where they pay, the runner's own process where they do not."""

from __future__ import annotations

from medtransfer.study.executors.base import Executor, available_cores
from medtransfer.study.executors.local import LocalExecutor
from medtransfer.study.executors.processes import ProcessExecutor


class AutoExecutor(Executor):
    """On a CPU with two or more cores, a round of two or more trials runs on one single-threaded worker process
    per core (:class:`ProcessExecutor`); anything else (a GPU, one core, a lone trial) runs in this process
    (:class:`LocalExecutor`).

    Measured with the demo on a 2-core CPU (docs/benchmarks.md): two single-threaded trials side by side finish the grid about
    1.45× sooner than one two-threaded trial after another, since small convolutions split poorly across threads.
    A trial's numbers depend on its thread count (rounding), not on which executor ran it.
    """

    name = "auto"

    def __init__(self, device: str = "cpu", workers: int | None = None, threads: int | None = None,
                 retries: int = 1):
        cpu = str(device).startswith("cpu")
        self.parallel = cpu and (workers or available_cores() // (threads or 1)) >= 2
        self.processes = ProcessExecutor(workers, threads or 1, retries) if self.parallel else None
        self.local = LocalExecutor(threads)
        self.on_start = None  # (trial, worker pid), passed on to the processes executor

    @property
    def width(self) -> int:
        return self.processes.workers if self.parallel else 1

    def where(self, device: str) -> str:
        return (self.processes if self.parallel else self.local).where(device)

    def run(self, trials, work, accept, *, progress=None, log=print, failed=None) -> None:
        trials = list(trials)
        if self.parallel and len(trials) >= 2:
            self.processes.on_start = self.on_start
            self.processes.run(trials, work, accept, progress=progress, log=log, failed=failed)
        else:
            self.local.run(trials, work, accept, progress=progress, log=log, failed=failed)
