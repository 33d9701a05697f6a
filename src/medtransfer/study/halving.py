"""Successive halving over a study's trials (``--search halving``), decided by Optuna's
:class:`~optuna.pruners.SuccessiveHalvingPruner`.

Every trial of the grid starts, with its full schedule. At the *rung* epochs ``r``, ``ηr``, ``η²r`` (``r`` = the
run's epochs / η³, rounded, at least 1; ``η`` = ``halving_rate``, default 2) the pruner compares the trial's
validation score with the scores that the trials of the same training fraction recorded at that rung, and stops it
unless it is among the best 1/η of them. So about half the trials stop at ``r`` epochs, a quarter at ``2r``, …, and
the rest train to the end. A stopped trial is recorded with ``stopped = "pruned"`` at the epoch it reached; the epoch
records of every trial say at which rung it was judged (``rung``) and how (``promoted``). The comparison and the
recommendation use the trials that trained to the end; the pruned ones are listed with their rung.

This is asynchronous successive halving (ASHA, Li et al., MLSys 2020), the form Optuna implements: a trial is
judged against those that reached the rung before it (the first ones at a rung always go on), so the decisions
depend on the order in which trials reach a rung — with one worker the plan's order, with several their speeds.

The Optuna study is a journal file in the study folder (shared by the worker processes on this machine). The store
stays the record: at the start of every run the journal is rebuilt from the recorded trials, replayed in the order
they finished, so the trials a killed run left in flight leave nothing behind and the search resumes where the
store stands.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import optuna

#: the rungs: r, ηr, η²r before the last epoch, with r = epochs / η^RUNGS
RUNGS = 3
JOURNAL = "halving.journal"


def first_rung(epochs: int, rate: int) -> int:
    """The epoch of the first rung of a run of ``epochs`` epochs."""
    return max(1, round(epochs / rate ** RUNGS))


def rung_epochs(epochs: int, rate: int) -> list[int]:
    """The rung epochs of a run of ``epochs`` epochs (the last epoch is not a rung)."""
    r = first_rung(epochs, rate)
    return [r * rate ** k for k in range(RUNGS + 1) if r * rate ** k < epochs]


@dataclass(frozen=True)
class Halving:
    """The successive halving of one study: where its journal is, the metric's direction and η. Picklable (paths and
    numbers only), so that each worker judges its own trials."""

    folder: Path
    higher_is_better: bool
    rate: int = 2

    @property
    def journal(self) -> Path:
        return Path(self.folder) / JOURNAL

    def _study(self, fraction: float, epochs: int) -> optuna.Study:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=first_rung(epochs, self.rate),
                                                        reduction_factor=self.rate, min_early_stopping_rate=0)
        storage = JournalStorage(JournalFileBackend(str(self.journal)))
        return optuna.create_study(storage=storage, study_name=f"fraction-{fraction:g}", pruner=pruner,
                                   direction="maximize" if self.higher_is_better else "minimize", load_if_exists=True)

    def judge(self, fraction: float, label: str) -> RungJudge:
        """The judge of one trial at ``fraction`` (``label`` names it in the journal)."""
        return RungJudge(self, fraction, label)

    def rebuild(self, recorded: list[dict], fractions: list[float]) -> None:
        """A new journal with a study per training fraction, holding the ``recorded`` trials in their order: dicts
        with ``fraction``, ``label``, ``history`` (the epoch records, each with its validation ``score``), ``pruned``
        and ``value``. A trial that reached no rung is left out: it is no rival at any rung."""
        for leftover in Path(self.folder).glob(JOURNAL + "*"):
            leftover.unlink()
        for fraction in fractions:  # every study made here, before workers open them at once
            self._study(fraction, 1)
        for r in recorded:
            planned = next((h["planned_epochs"] for h in r["history"] if "planned_epochs" in h), None)
            if planned is None:
                continue
            judge = self.judge(r["fraction"], r["label"])
            for h in r["history"]:
                judge(h["epoch"], planned, h["score"])
            judge.finish(pruned=r["pruned"], value=r["value"])


class RungJudge:
    """Called after every epoch of one trial with its validation score: returns the fields to add to the epoch's
    record: at a rung epoch ``{"rung": k, "promoted": bool, "planned_epochs": epochs}`` (else ``{}``);
    ``promoted`` False ends the run."""

    def __init__(self, halving: Halving, fraction: float, label: str):
        self.halving, self.fraction, self.label = halving, fraction, label
        self._study: optuna.Study | None = None
        self._trial: optuna.Trial | None = None
        self._rungs: list[int] = []

    def __call__(self, epoch: int, epochs: int, score: float) -> dict:
        if self._trial is None:
            self._study = self.halving._study(self.fraction, epochs)
            self._trial = self._study.ask()
            self._trial.set_user_attr("trial", self.label)
            self._trial.set_user_attr("pid", os.getpid())
            self._rungs = rung_epochs(epochs, self.halving.rate)
        self._trial.report(float(score) if score is not None else math.nan, epoch)
        if epoch not in self._rungs:
            return {}
        return {"rung": self._rungs.index(epoch), "promoted": not self._trial.should_prune(), "planned_epochs": epochs}

    def finish(self, *, pruned: bool = False, value: float | None = None, failed: bool = False) -> None:
        """Close the trial in the journal: pruned, complete with its final ``value``, or failed."""
        from optuna.trial import TrialState

        if self._trial is None:
            return
        if failed or (not pruned and (value is None or not np.isfinite(value))):
            self._study.tell(self._trial, state=TrialState.FAIL)
        elif pruned:
            self._study.tell(self._trial, state=TrialState.PRUNED)
        else:
            self._study.tell(self._trial, float(value))
        self._trial = None


def describe_halving(search: dict, percent: Callable[[float], str] = "{:.0%}".format) -> str:
    """Which trials successive halving stopped, in words, from the ``search`` a study stores: "the best 1/2 at each
    rung went on; 5 trials stopped at a rung (at 100 %: scratch ×2 at epochs 2, 4; tune:1 at epoch 2; …)"."""
    from medtransfer.strategies import by_depth

    pruned = search.get("pruned", [])
    head = f"the best 1/{search.get('rate')} at each rung went on"
    if not pruned:
        return f"{head}; no trial was stopped"
    parts = []
    for fraction in sorted({p["fraction"] for p in pruned}, reverse=True):
        here = [p for p in pruned if p["fraction"] == fraction]
        items = []
        for strategy in by_depth({p["strategy"] for p in here}):
            epochs = sorted(p["epoch"] for p in here if p["strategy"] == strategy)
            items.append(f"{strategy} ×{len(epochs)} at epochs {', '.join(map(str, epochs))}" if len(epochs) > 1
                         else f"{strategy} at epoch {epochs[0]}")
        parts.append(f"at {percent(fraction)}: {'; '.join(items)}")
    return f"{head}; {len(pruned)} trials stopped at a rung ({' — '.join(parts)})"
