"""What every executor shares: the report a trial hands back, the executor's interface, and the relay that
draws a worker's progress bars in the runner's display."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass
class TrialReport:
    """What one finished (or failed) trial hands to the runner: the store record's fields, the folder its worker
    saved the trial's model in for the runner to keep or drop (None: no model), and the line to log."""

    trial: Any  # trial_plan.Trial
    record: dict
    staged: str | None = None
    line: str = ""


Work = Callable[[Any, Any], TrialReport]  # (trial, progress or None) -> report
Accept = Callable[[TrialReport], None]


class Executor:
    """Runs trials and hands their reports to ``accept`` (in the calling process) as they finish."""

    name = "executor"

    @property
    def width(self) -> int:
        """How many trials it runs at once (a layer-wise search fills its rounds to this many)."""
        return 1

    def where(self, device: str) -> str:
        """How the report's set-up section names the place a trial ran (stored with each trial)."""
        return device

    def run(self, trials: list, work: Work, accept: Accept, *, progress=None, log=print,
            failed: Callable[[Any, str], None] | None = None) -> None:
        raise NotImplementedError


class RemoteProgress:
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


class ProgressRelay:
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
