"""Which trials a study runs: the grid of (strategy, training fraction, seed), or the next round of a layer-wise or
successive-halving search, read from what the study folder holds (the store's records and the paused trials)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medtransfer.study.config import StudyConfig
from medtransfer.study.folder import StudyFolder
from medtransfer.study.halving import HalvingSearch, PausedTrials, Round, TrialStanding
from medtransfer.study.search import ANCHORS, LayerwiseSearch
from medtransfer.study.store import StudyStore, trial_id
from medtransfer.study.summary import TrialRecords, study_task


@dataclass(frozen=True)
class Trial:
    strategy: str
    fraction: float
    seed: int
    rung: int | None = None  # successive halving: the rung to pause at (None: train to the end)
    stop: bool = False  # successive halving: a paused trial that lost its rung, to test and record as it paused

    @property
    def id(self) -> str:
        return trial_id(self.strategy, self.fraction, self.seed)

    def label(self) -> str:
        return f"{self.strategy} · {self.fraction:.0%} · seed {self.seed}"


@dataclass
class TrialPlan:
    """The trials of one study over ``strategies`` (those it may train); ``width``: how many trials its executor
    runs at once (a search fills its rounds to this many)."""

    config: StudyConfig
    store: StudyStore
    folder: StudyFolder
    strategies: list[str]
    width: int = 1

    def trials(self) -> list[Trial]:
        """The grid: largest fraction first, so the recommendation's evidence comes earliest; then seed, then depth.
        Successive halving plans the grid (its rungs stop trials early; :meth:`pending` is its next round). A
        layer-wise search: the trials recorded so far and the next round."""
        if self.config.search != "layerwise":
            return [Trial(s, f, seed) for f in self.config.fractions for seed in self.config.seeds
                    for s in self.strategies]
        trials = self.store.trials() if self.store.exists() else pd.DataFrame()
        recorded = [Trial(r.strategy, float(r.fraction), int(r.seed)) for r in trials.itertuples()] if len(trials) else []
        return recorded + self.pending()

    def pending(self) -> list[Trial]:
        """The trials to run now: the rest of the grid, or the layer-wise or halving search's next round."""
        done = self.store.finished_ids() if self.store.exists() else set()
        if self.config.search == "halving":  # the losers of the last rung first (a test pass each), then the work
            step = self._halving_round()
            return [Trial(*t, stop=True) for t in step.stop] + [Trial(*t) for t in step.work]
        if self.config.search != "layerwise":
            return [t for t in self.trials() if t.id not in done]
        search, records = self._layerwise()
        finished = (lambda s, f, seed: trial_id(s, f, seed) in done)
        return [Trial(*t) for t in search.next_round(records.validation if records else (lambda f: {}), finished,
                                                     width=self.width)]

    def search_states(self) -> list:
        """Where a layer-wise search stands at each fraction (:class:`~medtransfer.study.search.ChainState`)."""
        if self.config.search != "layerwise" or not self.store.exists():
            return []
        search, records = self._layerwise()
        if records is None:
            return []
        done = self.store.finished_ids()
        return search.states(records.validation, lambda s, f, seed: trial_id(s, f, seed) in done)

    def _layerwise(self) -> tuple[LayerwiseSearch, TrialRecords | None]:
        """The layer-wise search and the records it reads (none before the first trial is recorded)."""
        chain = [s for s in self.strategies if s not in ANCHORS]
        ready = self.store.exists() and self.store.meta().get("task")
        task = study_task(self.store) if ready else None
        search = LayerwiseSearch(chain, self.config.fractions, self.config.seeds, task.scorer.metric if task else None,
                                 self.config.patience_depth)
        return search, (TrialRecords(self.store, task) if task else None)

    def _halving_round(self) -> Round:
        """The halving search's next round, from the store's records and the paused trials' files."""
        ready = self.store.exists() and self.store.meta().get("task")
        metric = study_task(self.store).scorer.metric if ready else None
        search = HalvingSearch(self.strategies, self.config.fractions, self.config.seeds,
                               metric.higher_is_better if metric else True, self.config.halving_rate)
        trials = self.store.trials().set_index("id") if ready else pd.DataFrame()
        histories = self.store.histories() if ready and len(trials) else {}
        paused = PausedTrials(self.folder)

        def standing(strategy: str, fraction: float, seed: int) -> TrialStanding:
            tid = trial_id(strategy, fraction, seed)
            if tid in trials.index:
                return TrialStanding(done=True, failed=trials.loc[tid, "status"] != "done", history=histories.get(tid))
            saved = paused.load(tid)
            if saved is None:
                return TrialStanding()
            history = saved["record"]["history"]
            return TrialStanding(rung=history[-1]["rung"], history=history)

        return search.next_round(standing, f"val_{metric.name}" if metric else "val_score", self.width)
