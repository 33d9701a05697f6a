"""Choices made by timing two ways of doing the same work on this machine, once, and remembered.

Which kernel or precision is faster depends on the CPU (measured: the grouped depthwise weight gradient 1.6–2.2×
faster on an AVX2 EPYC and 0.79× on an AVX-512 Xeon; bf16 autocast faster on one AVX-512 BF16 CPU and slower on
another). So the ``auto`` settings time both ways the first time they meet a case and keep the verdict in memory
and in a JSON file of the user's cache folder (:func:`cache_dir`), keyed by :func:`machine_key` — the CPU, this
process's thread count and the PyTorch version — so that every later trial and study on the machine takes the same
path without timing again, and a trial's numbers do not depend on a timing made during it, except the first time.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def cache_dir() -> Path:
    """``$MEDTRANSFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/medtransfer``, else ``~/.cache/medtransfer``."""
    root = os.environ.get("MEDTRANSFER_CACHE_DIR")
    return Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medtransfer"


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """The CPU, this process's thread count and the PyTorch version: what a verdict holds for."""
    return f"{cpu_name()} · {torch.get_num_threads()} threads · torch {torch.__version__}"


def median_ms(fn: Callable, *args, repeats: int = 3) -> float:
    """The median of ``repeats`` calls of ``fn(*args)``, after one call to warm up, in milliseconds."""
    fn(*args)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[len(times) // 2]


def compare_ms(fns: list[Callable[[], object]], rounds: int = 5) -> list[float]:
    """The median time of each of ``fns``, in milliseconds: each called once to warm up, then ``rounds`` rounds of
    one call each in turn, so that a drift of the machine's speed during the timing falls on all of them alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, kept in zip(fns, times):
            started = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - started)
    return [1000 * sorted(t)[len(t) // 2] for t in times]


class Verdicts:
    """The verdicts kept in ``cache_dir() / filename``: case → a dict of timings and the choice, per machine."""

    def __init__(self, filename: str):
        self.filename = filename
        self._memory: dict[str, dict[str, dict]] = {}  # machine → case → verdict

    @property
    def path(self) -> Path:
        return cache_dir() / self.filename

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, case: str) -> dict | None:
        """The verdict for ``case`` on this machine (from memory, else from the file), or None if never timed."""
        known = self._memory.setdefault(machine_key(), {})
        if case not in known:
            stored = self._read().get(machine_key(), {})
            if case not in stored:
                return None
            known[case] = stored[case]
        return known[case]

    def put(self, case: str, verdict: dict) -> None:
        """Keep ``verdict`` in memory and merge it into the file (re-read first: other processes may have added
        theirs); a file that cannot be written only costs a new timing in the next process."""
        machine = machine_key()
        self._memory.setdefault(machine, {})[case] = verdict
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = self._read()
            kept.setdefault(machine, {})[case] = verdict
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(kept, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass
