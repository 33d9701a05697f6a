"""Running a study: every (strategy, training fraction, seed) trial, resumable, one durable record per trial.

The data are read, split and resized once; each trial then trains on its nested subset of the training split and is
scored on the same validation and test splits. Finished trials are skipped when the same command runs again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medtransfer.backbones import create_backbone
from medtransfer.errors import ConfigError
from medtransfer.files import check_output_folder
from medtransfer.strategies import by_depth, layerwise_strategies, parse_strategy
from medtransfer.study.config import StudyConfig
from medtransfer.study.data_check import changed_data_message, data_changes
from medtransfer.study.executors import Executor, make_executor
from medtransfer.study.folder import StudyFolder
from medtransfer.study.folder_choice import choose_folder, folder_beside
from medtransfer.study.outputs import write_model_cards, write_summary_files
from medtransfer.study.recorder import TrialRecorder
from medtransfer.study.search_record import record_rule, record_search
from medtransfer.study.store import StudyStore
from medtransfer.study.study_data import StudyData, read_data, write_down
from medtransfer.study.summary import StudySummary, study_task, summarize
from medtransfer.study.tracked import StudyTracking
from medtransfer.study.trial_loop import TrialLoop, build_frozen_cache
from medtransfer.study.trial_plan import Trial, TrialPlan
from medtransfer.study.trial_work import TrialWork
from medtransfer.tasks import Task, resolve_task
from medtransfer.training import resolve_device
from medtransfer.training.precision import resolve_precision


@dataclass
class Settled:
    """What a study settles before its first look at the folder: the device, the executor, the folder it writes
    to (the one given, or ``-2`` beside it), its store and its trackers."""

    device: str
    executor: Executor
    folder: Path
    store: StudyStore
    tracking: StudyTracking


class Study:
    """``Study(config, folder).run()`` runs the grid into ``folder``; :meth:`results` is a DataFrame of trials.

    If ``folder`` holds a study with another configuration, it stops with an error, or with ``new_folder=True``
    writes to ``folder-2`` (``-3``, …) instead. Results of two configurations are never mixed.

    The constructor only stores its arguments; the device, the executor and the folder are settled (and bad ones
    refused) when the study runs or is first asked about them (its folder, store, plan, …).
    """

    def __init__(self, config: StudyConfig, folder: str | Path, *, device: str = "auto", new_folder: bool = False,
                 cache_memory: int | None = None, executor: Executor | str = "auto"):
        self.config = config
        self.new_folder = new_folder
        self.cache_memory = cache_memory
        self._out, self._device, self._executor = folder, device, executor
        self._settled: Settled | None = None
        self._num_groups: int | None = None

    # -- settled on first use ----------------------------------------------------------------------------
    def _settle(self) -> Settled:
        if self._settled is None:
            device = str(resolve_device(self._device))
            resolve_precision(self.config.precision, device)  # fp16 on a CPU fails here, not in every trial
            executor = self._executor
            executor = make_executor(executor, device=device) if isinstance(executor, str) else executor
            if self.config.search == "halving" and getattr(executor, "address", None):
                raise ConfigError("--search halving keeps its paused trials in the study folder, which the workers "
                                  "of a Ray cluster cannot reach; run it with the local, processes or auto executor, "
                                  "or local Ray")
            check_output_folder(Path(self._out), self.config.data)
            folder = choose_folder(self.config, Path(self._out), self.new_folder)
            tracking = StudyTracking(self)  # --track: MLflow, TensorBoard (a missing extra fails here)
            self._settled = Settled(device, executor, folder, StudyStore(folder), tracking)
        return self._settled

    @property
    def device(self) -> str:
        return self._settle().device

    @property
    def executor(self) -> Executor:
        return self._settle().executor

    @property
    def folder(self) -> Path:
        return self._settle().folder

    @property
    def store(self) -> StudyStore:
        return self._settle().store

    @property
    def tracking(self) -> StudyTracking:
        return self._settle().tracking

    # -- plan --------------------------------------------------------------------------------------------
    @functools.cached_property
    def task(self) -> Task:
        """The study's task: as configured, or told by the data's layout."""
        return resolve_task(self.config.task, self.config.data)

    @property
    def num_groups(self) -> int:
        if self._num_groups is None:
            backbone = create_backbone(self.config.backbone, weights="scratch")
            self._num_groups = len(self.task.head.layout(backbone)[0])
        return self._num_groups

    def strategies(self) -> list[str]:
        """The strategies the study may train (a layer-wise search trains a part of them)."""
        if self.config.strategies is not None:
            return by_depth(self.config.strategies)
        return [s.name for s in layerwise_strategies(self.num_groups)]

    def _trial_plan(self) -> TrialPlan:
        return TrialPlan(self.config, self.store, StudyFolder(self.folder), self.strategies(), self.executor.width)

    def plan(self) -> list[Trial]:
        """The grid: largest fraction first, so the recommendation's evidence comes earliest; then seed, then depth.
        Successive halving plans the grid (its rungs stop trials early; :meth:`pending` is its next round). A
        layer-wise search: the trials recorded so far and the next round."""
        return self._trial_plan().trials()

    def pending(self) -> list[Trial]:
        """The trials to run now: the rest of the grid, or the layer-wise or halving search's next round."""
        return self._trial_plan().pending()

    def search_states(self) -> list:
        """Where a layer-wise search stands at each fraction (:class:`~medtransfer.study.search.ChainState`)."""
        return self._trial_plan().search_states()

    # -- running -----------------------------------------------------------------------------------------
    def run(self, progress=None, log=print) -> StudySummary:
        """Run every pending trial; ``progress`` is a rich Progress (or None), ``log`` prints one line per trial."""
        self._settle()
        for strategy in self.strategies():  # K out of range fails before any work
            parse_strategy(strategy).validate(self.num_groups)
        plan, pending = self.plan(), self.pending()
        self.tracking.warn_with(log)
        if pending or (self.store.exists() and plan):  # a finished study reads its data too: they may have changed
            first = (pending or plan)[0]
            data = read_data(self.config, self._run_config(first), progress, log)
            if self._check_data(data, log):  # a new study beside it: all of its plan is pending
                plan, pending = self.plan(), self.pending()
        if pending:
            self._run_trials(data, pending, len(plan), progress, log)
        if self.store.exists():
            record_search(self.store, self.config, StudyFolder(self.folder), self.search_states())
            record_rule(self.store, self.config, log)
        summary = self.summary()
        write_summary_files(StudyFolder(self.folder), summary, self.results())
        write_model_cards(StudyFolder(self.folder), self.store, summary, self.results())
        self.tracking.finish(summary)
        return summary

    def _run_trials(self, data: StudyData, pending: list[Trial], total: int, progress, log) -> None:
        """Write the data down in the store, then run ``pending`` and the rounds after it."""
        write_down(self.store, self.config, self.device, data)
        self.tracking.start()
        folder, where = StudyFolder(self.folder), self.executor.where(self.device)
        may_run = self.strategies() if self.config.search in ("layerwise", "halving") else [t.strategy for t in pending]
        cache = build_frozen_cache(self._run_config(pending[0]), data, may_run, memory=self.cache_memory,
                                   folder=folder, progress=progress, log=log)
        recorder = TrialRecorder(self.store, folder, self.config.checkpoints, study_task(self.store).scorer.metric,
                                 self.tracking, where, log)
        work = TrialWork(self.config, self.device, where, folder, data.prepared, data.images, cache,
                         self.config.halving_rate if self.config.search == "halving" else None)
        loop = TrialLoop(self.executor, recorder, self.store, folder, self.config.search, self.pending)
        loop.run(pending, work, total, progress=progress, log=log)

    def _check_data(self, data: StudyData, log) -> bool:
        """Refuse to go on with data that differ from what the finished trials read, or, with ``new_folder``, start
        a new study beside this one (True)."""
        what = data_changes(self.store, data.prepared.split.counts(), data.fingerprint)
        if what is None:
            return False
        if not self.new_folder:
            raise ConfigError(changed_data_message(self.config.data, self.folder, what))
        settled = self._settle()
        settled.folder = folder_beside(self.config, self.folder)
        settled.store = StudyStore(settled.folder)
        log(f"the data changed since the study started ({what}); starting a new study in {self.folder}")
        return True

    def _run_config(self, trial: Trial):
        return self.config.run_config(trial.strategy, trial.fraction, trial.seed, self.device)

    # -- results -----------------------------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        """One row per finished or failed trial."""
        return self.store.trials() if self.store.exists() else pd.DataFrame()

    def summary(self) -> StudySummary:
        return summarize(self.store, study_task(self.store))
