"""Running a study's pending trials round after round with its executor, in the study's own process: the
frozen-prefix cache is built once for every strategy the run may train, each report goes to the recorder as it
arrives, and what the run staged (models in flight, a cache spilled to disk) is removed when it ends, Ctrl-C too."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from medtransfer.config import RunConfig
from medtransfer.errors import MedTransferError
from medtransfer.strategies import parse_strategy
from medtransfer.study.executors import Executor, TrialReport
from medtransfer.study.folder import StudyFolder
from medtransfer.study.recorder import TrialRecorder
from medtransfer.study.store import StudyStore
from medtransfer.study.study_data import StudyData
from medtransfer.engine import build_cache
from medtransfer.study.trial_plan import Trial
from medtransfer.study.trial_work import TrialWork


class StudyInterrupted(MedTransferError):
    """Ctrl-C: every finished trial is saved; running the same command again resumes."""


def build_frozen_cache(run_config: RunConfig, data: StudyData, strategies: list[str], *, memory: int | None,
                       folder: StudyFolder, progress, log):
    """The frozen-prefix cache for every depth of ``strategies`` (None when no strategy has a cached prefix); a
    cache over the memory budget spills to the study folder."""
    started = time.perf_counter()
    cache = build_cache(run_config, data.prepared, data.images, [parse_strategy(s) for s in dict.fromkeys(strategies)],
                        memory_budget=memory, spill_dir=folder.cache, progress=progress, log=log)
    if cache is not None:
        log(f"frozen layers cached for {len(cache.boundaries)} depths in {time.perf_counter() - started:.0f} s "
            f"({cache.storage})")
    return cache


@dataclass
class TrialLoop:
    """The rounds of one run: the grid in one round; a layer-wise search one depth per round (its plan grows as it
    goes), a halving search one rung per round, each next round from ``next_round``."""

    executor: Executor
    recorder: TrialRecorder
    store: StudyStore
    folder: StudyFolder
    search: str
    next_round: Callable[[], list[Trial]]

    def run(self, pending: list[Trial], work: TrialWork, total: int, progress=None, log=print) -> None:
        """Run ``pending`` and the rounds after it; ``total``: the trials planned, for the progress bar."""
        overall = (progress.add_task("trials", total=total, completed=len(self.store.finished_ids()))
                   if progress else None)
        shutil.rmtree(self.folder.staged, ignore_errors=True)  # models of trials a killed run left unfinished

        def accept(report: TrialReport) -> None:
            self.recorder.accept(report)
            if progress is not None:
                progress.update(overall, completed=len(self.store.finished_ids()))

        try:
            while pending:
                self.executor.run(pending, work, accept, progress=progress, log=log, failed=self.recorder.failed)
                pending = self.next_round() if self.search in ("layerwise", "halving") else []
                if pending and progress is not None:
                    self._show_round(progress, overall, len(pending))
        except KeyboardInterrupt:
            raise StudyInterrupted(
                f"interrupted: {len(self.store.finished_ids())} trials are saved in {self.folder.path}; the trials "
                f"in flight were not. Run the same command again to resume."
            ) from None
        finally:
            if progress is not None:
                progress.remove_task(overall)
            shutil.rmtree(self.folder.staged, ignore_errors=True)
            if work.cache is not None and work.cache.storage == "memmap":
                shutil.rmtree(self.folder.cache, ignore_errors=True)

    def _show_round(self, progress, overall, pending: int) -> None:
        """The progress bar at the start of a round (a layer-wise search's plan grows by the round)."""
        done = len(self.store.finished_ids())
        progress.update(overall, completed=done)
        if self.search == "layerwise":
            progress.update(overall, total=done + pending)
