"""How a study chose, in the store's meta: what a layer-wise or halving search decided (for the report and a resume)
and the recommendation rule asked for last."""

from __future__ import annotations

from medtransfer.study.config import StudyConfig
from medtransfer.study.folder import StudyFolder
from medtransfer.study.halving import PausedTrials
from medtransfer.study.store import StudyStore


def record_search(store: StudyStore, config: StudyConfig, folder: StudyFolder, search_states: list) -> None:
    """What a layer-wise search (its chains' ``search_states``) or a halving search (the trials it stopped)
    decided; a finished halving search leaves no paused-trials folder."""
    if config.search == "layerwise":
        store.set_meta("search", {"kind": config.search, "patience_depth": config.patience_depth,
                                  "chains": [st.__dict__ for st in search_states]})
    elif config.search == "halving":
        store.set_meta("search", {"kind": "halving", "rate": config.halving_rate, "pruned": _pruned(store)})
        PausedTrials(folder).tidy()


def record_rule(store: StudyStore, config: StudyConfig, log) -> None:
    """Record the recommendation rule asked for now: it reads the trials and changes none of them, so a finished
    study is chosen again under another rule without training."""
    stored = store.config()
    if stored.get("recommend", "argmax") != config.recommend:
        log(f"recommendation rule: {config.recommend} (was {stored.get('recommend', 'argmax')})")
        store.set_config({**stored, "recommend": config.recommend}, config.hash())


def _pruned(store: StudyStore) -> list[dict]:
    """The trials successive halving stopped: strategy, fraction, seed, the rung and the epoch."""
    trials = store.trials()
    if not len(trials):
        return []
    histories = store.histories()
    return [{"strategy": r.strategy, "fraction": float(r.fraction), "seed": int(r.seed),
             "rung": (histories.get(r.id) or [{}])[-1].get("rung"), "epoch": int(r.epochs_run)}
            for r in trials[trials.stopped == "pruned"].itertuples()]
