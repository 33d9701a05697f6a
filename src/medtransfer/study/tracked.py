"""A study's trackers (``--track``), fed from its store: each recorded trial becomes a run when the runner has
recorded it, the study's parent run gets the summary and the recommended model at the end.

Everything here runs in the study's own process, after the store's write, so the in-process, process and Ray
executors log alike; each tracker's run ids are kept in the store, so a resumed study continues its parent run and
logs no trial twice (a trial the last run recorded but did not log is logged on the next start).
"""

from __future__ import annotations

import functools
from pathlib import Path

from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.strategies import parse_strategy
from medtransfer.study.data_check import FINGERPRINT
from medtransfer.study.folder import MODEL_SPEC, StudyFolder
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import StudySummary, study_task
from medtransfer.tracking import (StudyFacts, StudyResults, Tracking, TrialFacts, check_installed, open_trackers,
                                  parse_track)


class StoreMemory:
    """One tracker's run ids, kept in the study's store."""

    def __init__(self, store: StudyStore, tracker: str):
        self.store, self.tracker = store, tracker
        self.runs = store.tracked(tracker)

    def get(self, key: str) -> tuple[str, bool] | None:
        return self.runs.get(key)

    def remember(self, key: str, run_id: str, complete: bool) -> None:
        self.store.set_tracked(self.tracker, key, run_id, complete)
        self.runs[key] = (run_id, complete)


def _never_raises(hook):
    """A hook that reports its failure once and turns tracking off, so the study goes on whatever happens."""
    @functools.wraps(hook)
    def guarded(self, *args):
        try:
            return hook(self, *args)
        except Exception as e:  # noqa: BLE001 - tracking must not stop or corrupt the study
            self.specs, self.tracking.trackers = [], []
            self.tracking.warn(f"warning: tracking failed ({type(e).__name__}: {e}); the study goes "
                               f"on without it")
    return guarded


class StudyTracking:
    """The runner's hooks: :meth:`start` once the store exists, :meth:`trial_done` after each record,
    :meth:`finish` with the summary, :meth:`report` when the report is written."""

    def __init__(self, study, log=print):
        self.study = study
        self.specs = parse_track(study.config.track, "track")
        check_installed(self.specs)  # a missing extra fails before any training
        self.tracking = Tracking([], warn=log)

    def warn_with(self, log) -> None:
        """Report a failing tracker with ``log`` (the runner's one line per event)."""
        self.tracking.warn = log

    @_never_raises
    def start(self) -> None:
        if not self.specs or self.tracking.started or not self.study.store.exists():
            return
        study, store = self.study, self.study.store
        self.tracking.trackers = open_trackers(self.specs, study.folder)
        config = {k: v for k, v in study.config.to_dict().items() if k not in ("track", "experiment")}
        facts = StudyFacts(name=study.config.experiment or study.folder.name, folder=study.folder, config=config, tags=self._common_tags())
        self.tracking.start(facts, lambda key: StoreMemory(store, key))
        for trial in self._trials():  # what an earlier, interrupted run recorded but did not log
            self.tracking.trial_done(trial)

    @_never_raises
    def trial_done(self, tid: str) -> None:
        if not self.specs:
            return
        if not self.tracking.started:
            self.start()  # logs every recorded trial, this one included
            return
        for trial in self._trials({tid}):
            self.tracking.trial_done(trial)

    @_never_raises
    def finish(self, summary: StudySummary) -> None:
        self.start()
        if not self.tracking:
            return
        folder = StudyFolder(self.study.folder)
        model = folder.strategy_model(str(summary.recommended))
        tags = {"recommended": summary.recommended or "none", "recommended_fraction": summary.recommended_fraction,
                "recommend_rule": summary.rule}
        self.tracking.end(StudyResults(
            tags={k: str(v) for k, v in tags.items()},
            artifacts=folder.summaries,
            model=model if summary.recommended and (model / MODEL_SPEC).is_file() else None,
            model_key=f"model:{summary.recommended}"))

    @_never_raises
    def report(self, path: Path) -> None:
        """The report page and its figures, kept with the study's run."""
        if self.tracking:
            self.tracking.artifacts([Path(path), StudyFolder(Path(path).parent).figures])

    # -- what a trial's run holds ------------------------------------------------------------------------
    def _common_tags(self) -> dict:
        store = self.study.store
        blob = store.blob(FINGERPRINT)
        tags = {"task": study_task(store).name, "medtransfer.study": str(self.study.folder)}
        if blob is not None:
            tags["data_fingerprint"] = DataFingerprint.from_json(blob.decode()).digest
        return tags

    def _trials(self, ids: set[str] | None = None) -> list[TrialFacts]:
        store, config = self.study.store, self.study.config
        trials, histories = store.trials(), store.histories()
        metric = study_task(store).scorer.metric.name
        common = self._common_tags()
        out = []
        for row in trials.to_dict("records"):
            if ids is not None and row["id"] not in ids:
                continue
            strategy = parse_strategy(row["strategy"])
            groups = self.study.num_groups
            params = {"backbone": config.backbone, "weights": config.weights, "strategy": row["strategy"],
                      "frozen_groups": strategy.frozen_groups(groups), "layer_groups": groups,
                      "fraction": row["fraction"], "seed": row["seed"], "input_size": config.input_size,
                      "augmentation": config.augmentation, "precision": config.precision,
                      "executor": row["device"], "train_size": row["train_size"], "search": config.search,
                      **{k: getattr(config.train, k) for k in ("epochs", "lr", "batch_size", "optimizer")}}
            if row.get("fold") is not None:
                params["fold"] = row["fold"]
            status = ("failed" if row["status"] == "failed" else
                      "pruned" if row["stopped"] == "pruned" else "finished")
            tags = {**common, "status": status, "stopped": row["stopped"], "best_epoch": row["best_epoch"],
                    "reason": row["error"]}
            metrics = {f"final_val_{metric}": row["val_score"],
                       **{k: v for k, v in row.items() if k.startswith("test_")}}
            out.append(TrialFacts(
                key=row["id"], name=f"{row['strategy']} · {row['fraction']:.0%} · seed {row['seed']}",
                params={k: v for k, v in params.items() if _given(v)}, history=histories.get(row["id"], []),
                metrics={k: float(v) for k, v in metrics.items() if _given(v)},
                tags={k: str(v) for k, v in tags.items() if _given(v)}, status=status, ended=row["finished"],
                seconds=row["seconds"] if _given(row["seconds"]) else None))
        return out


def _given(v) -> bool:
    return v is not None and not (isinstance(v, float) and v != v)


__all__ = ["StoreMemory", "StudyTracking"]
