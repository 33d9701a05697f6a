"""Running a study: every (strategy, training fraction, seed) trial, resumable, one durable record per trial.

The data are read, split and resized once; each trial then trains on its nested subset of the training split and is
scored on the same validation and test splits. Finished trials are skipped when the same command runs again.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.backbones import create_backbone
from medtransfer.config import RunConfig
from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.errors import ConfigError, MedTransferError
from medtransfer.files import StorageError, atomic_write, check_output_folder
from medtransfer.plots import plot_reliability
from medtransfer.model.saved import save_model
from medtransfer.strategies import by_depth, layerwise_strategies, parse_strategy
from medtransfer.study.config import StudyConfig
from medtransfer.study.data_check import FINGERPRINT, changed_data_message, data_changes, notice_lines
from medtransfer.study.executors import Executor, TrialReport, make_executor
from medtransfer.study.halving import HalvingSearch, PausedTrials, RungMarker, TrialStanding, promote
from medtransfer.study.recommend import rule_sentence
from medtransfer.study.search import ANCHORS, LayerwiseSearch
from medtransfer.study.store import StoreError, StudyStore, trial_id
from medtransfer.study.summary import StudySummary, TrialRecords, complete_trials, study_task, summarize
from medtransfer.study.tracked import StudyTracking
from medtransfer.engine import (
    PreparedData,
    TrialImages,
    build_cache,
    data_fingerprint,
    environment,
    prepare_data,
    run_trial,
)
from medtransfer.study.trial_lines import failed_line, finished_line, paused_line
from medtransfer.tasks import Task, resolve_task
from medtransfer.training import resolve_device
from medtransfer.training.precision import resolve_precision

#: the key of the example test images (and their targets) the report shows, in the store's blobs
EXAMPLES = "examples"


class StudyInterrupted(MedTransferError):
    """Ctrl-C: every finished trial is saved; running the same command again resumes."""


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


#: where workers save each trial's model until the runner keeps or drops it
STAGED = ".staged-models"


def _folder_name(trial_id: str) -> str:
    return trial_id.replace("|", "_").replace(":", "-")


def _replace_folder(new: Path, final: Path) -> None:
    """Move ``new`` to ``final``, replacing what was there; an interruption leaves one of the two in place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _same_but_spelling(stored: dict, given: dict) -> bool:
    """Whether two study configurations differ only in how they name the same data folder or file
    (``../data/x`` and ``/abs/data/x``); the data fingerprint still checks that its content is unchanged."""
    a, b = stored.get("data"), given.get("data")
    if not (a and b and Path(a).exists() and Path(b).exists()):
        return False
    return Path(a).resolve() == Path(b).resolve() and {**stored, "data": b} == given


def _free_folder(folder: Path) -> Path:
    for i in itertools.count(2):
        candidate = folder.with_name(f"{folder.name}-{i}")
        if not candidate.exists():
            return candidate
    raise AssertionError  # pragma: no cover


@dataclass
class TrialWork:
    """One trial's work, wherever an executor runs it: everything it needs (the study's settings, its decoded
    images, the frozen-prefix cache) in one picklable object, and nothing of the store, which only the runner writes.
    Calling it trains and tests a trial, saves its model in the staging folder and returns a :class:`TrialReport`;
    a failed trial is reported, not raised."""

    config: StudyConfig
    device: str
    where: str  # how the set-up section names where it ran
    folder: Path
    prepared: PreparedData
    images: TrialImages
    cache: object = None
    halving_rate: int | None = None  # a successive-halving study: its trials pause at the rungs

    def __call__(self, trial: Trial, progress=None) -> TrialReport:
        prepared, images = self.prepared, self.images
        started = time.perf_counter()
        paused = PausedTrials(self.folder) if self.halving_rate else None
        saved = paused.load(_folder_name(trial.id)) if paused is not None else None
        before = saved["record"]["seconds"] if saved else 0.0  # the trial's time up to its pause
        resume = saved["resume"] if saved is not None else None
        if resume is not None and not trial.stop:  # it goes on from its rung
            resume = {**resume, "fit": {**resume["fit"], "history": promote(resume["fit"]["history"])}}
        marker = RungMarker(self.halving_rate, trial.rung) if self.halving_rate else None
        try:
            run_config = self.config.run_config(trial.strategy, trial.fraction, trial.seed, self.device)
            outcome = run_trial(run_config, prepared, images, progress=progress, cache=self.cache, on_epoch=marker,
                                resume=resume, train=not trial.stop)
        except (KeyboardInterrupt, StorageError, StoreError):
            raise
        except Exception as e:  # a failed trial is recorded and the study goes on
            message = str(e) if isinstance(e, MedTransferError) else f"{type(e).__name__}: {e}"
            _log_traceback(self.folder, trial)
            return TrialReport(trial, dict(status="failed", error=message,
                                           seconds=before + time.perf_counter() - started, device=self.where),
                               line=failed_line(trial.label(), message))
        fit, metric = outcome.fit, outcome.task.metric
        seconds = before + time.perf_counter() - started
        if fit.stopped == "paused":  # saved with its state: it resumes, or it is tested and recorded if it loses
            paused.save(_folder_name(trial.id), {"resume": outcome.resume_state(),
                                                 "record": {"seconds": seconds, "history": fit.history}})
            line = paused_line(trial.label(), fit.history[-1]["rung"], len(fit.history), fit.epochs, metric.label,
                               outcome.val_score, seconds)
            return TrialReport(trial, {"status": "paused", "seconds": seconds}, None, line)
        staged = None
        if outcome.diverged is None and self.config.checkpoints != "none" and fit.stopped != "pruned":
            staged = self.folder / STAGED / f"{_folder_name(trial.id)}-{os.getpid()}"
            save_model(staged, outcome.weights_module,
                       {**outcome.spec, "trial": trial.id, f"val_{metric.name}": outcome.val_score,
                        "test_metrics": outcome.test_metrics}, complete=True)
            if outcome.calibration is not None:  # the model's reliability diagram beside it, as a run folder has it
                plot_reliability(outcome.calibration.curves, staged, what="test split")
        record = dict(
            status="failed" if outcome.diverged else "done",
            error=str(outcome.diverged) if outcome.diverged else None,
            val_score=outcome.val_score, test_metrics=outcome.test_metrics, best_epoch=fit.best_epoch,
            epochs_run=len(fit.history), stopped=fit.stopped,
            train_size=int(round(len(prepared.split.train) * trial.fraction)),
            trainable_parameters=outcome.trainable_parameters, seconds=seconds,
            device=self.where, history=fit.history, samples=prepared.split.test, cases=outcome.case_columns(),
            val_samples=prepared.split.val, val_cases=outcome.val_case_columns(),
        )
        rung = fit.history[-1]["rung"] if trial.stop else None  # successive halving stopped it there
        line = finished_line(trial.label(), record, metric, stopped_at_rung=rung)
        return TrialReport(trial, record, str(staged) if staged else None, line)


def _log_traceback(folder: Path, trial: Trial) -> None:
    try:
        with open(folder / "failures.log", "a") as f:
            f.write(f"== {trial.id} ==\n{traceback.format_exc()}\n")
    except OSError:
        pass


class Study:
    """``Study(config, folder).run()`` runs the grid into ``folder``; :meth:`results` is a DataFrame of trials.

    If ``folder`` holds a study with another configuration, it stops with an error, or with ``new_folder=True``
    writes to ``folder-2`` (``-3``, …) instead. Results of two configurations are never mixed.
    """

    def __init__(self, config: StudyConfig, folder: str | Path, *, device: str = "auto", new_folder: bool = False,
                 cache_memory: int | None = None, executor: Executor | str = "auto"):
        self.config = config
        self.cache_memory = cache_memory
        self.device = str(resolve_device(device))
        resolve_precision(config.precision, self.device)  # fp16 on a CPU fails here, not in every trial
        self.executor = make_executor(executor, device=self.device) if isinstance(executor, str) else executor
        if config.search == "halving" and getattr(self.executor, "address", None):
            raise ConfigError("--search halving keeps its paused trials in the study folder, which the workers of a "
                              "Ray cluster cannot reach; run it with the local, processes or auto executor, or local Ray")
        self.new_folder = new_folder
        check_output_folder(Path(folder), config.data)
        self.folder = self._choose_folder(Path(folder), new_folder)
        self.store = StudyStore(self.folder)
        self._num_groups: int | None = None
        self._metric = None
        self.tracking = StudyTracking(self)  # --track: MLflow, TensorBoard (a missing extra fails here)

    # -- folder and plan ---------------------------------------------------------------------------------
    def _choose_folder(self, folder: Path, new_folder: bool) -> Path:
        store = StudyStore(folder)
        if store.exists():
            store.check()
            stored = store.meta().get("config_hash")
            as_made = dataclasses.replace(self.config, recommend=store.config().get("recommend", "argmax"))
            if (stored not in (self.config.hash(), as_made.hash(with_rule=True))
                    and not _same_but_spelling(store.config(), self.config.to_dict())):
                if new_folder:
                    return self._choose_folder(_free_folder(folder), False)
                old = store.config()
                changed = sorted(k for k, v in self.config.to_dict().items() if old.get(k) != v and k != "recommend")
                raise ConfigError(
                    f"{folder} holds a study with another configuration (differs in: {', '.join(changed) or 'details'}). "
                    f"Rerun with its settings to resume, pass --new-folder to write beside it, or choose another --out."
                )
        elif folder.is_file():
            raise ConfigError(f"{folder} is a file; give a folder for the study")
        elif folder.is_dir() and any(folder.iterdir()):
            raise ConfigError(f"{folder} is not empty and holds no study; choose an empty or new folder")
        return folder

    @functools.cached_property
    def task(self) -> type[Task]:
        """The study's task: as configured, or told by the data's layout."""
        return resolve_task(self.config.task, self.config.data)

    @property
    def num_groups(self) -> int:
        if self._num_groups is None:
            backbone = create_backbone(self.config.backbone, weights="scratch")
            self._num_groups = len(self.task.layout(backbone)[0])
        return self._num_groups

    def strategies(self) -> list[str]:
        """The strategies the study may train (a layer-wise search trains a part of them)."""
        if self.config.strategies is not None:
            return by_depth(self.config.strategies)
        return [s.name for s in layerwise_strategies(self.num_groups)]

    def plan(self) -> list[Trial]:
        """The grid: largest fraction first, so the recommendation's evidence comes earliest; then seed, then depth.
        Successive halving plans the grid (its rungs stop trials early; :meth:`pending` is its next round). A
        layer-wise search: the trials recorded so far and the next round."""
        if self.config.search != "layerwise":
            return [Trial(s, f, seed) for f in self.config.fractions for seed in self.config.seeds
                    for s in self.strategies()]
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
            return [t for t in self.plan() if t.id not in done]
        search, records = self._search()
        finished = (lambda s, f, seed: trial_id(s, f, seed) in done)
        return [Trial(*t) for t in search.next_round(records.validation if records else (lambda f: {}), finished,
                                                     width=self.executor.width)]

    def _search(self) -> tuple[LayerwiseSearch, TrialRecords | None]:
        """The layer-wise search and the records it reads (none before the first trial is recorded)."""
        chain = [s for s in self.strategies() if s not in ANCHORS]
        ready = self.store.exists() and self.store.meta().get("task")
        task = study_task(self.store) if ready else None
        search = LayerwiseSearch(chain, self.config.fractions, self.config.seeds, task.metric if task else None,
                                 self.config.patience_depth)
        return search, (TrialRecords(self.store, task) if task else None)

    def _halving_round(self):
        """The halving search's next round (:class:`~medtransfer.study.halving.Round`), from the store's records and
        the paused trials' files."""
        ready = self.store.exists() and self.store.meta().get("task")
        metric = study_task(self.store).metric if ready else None
        search = HalvingSearch(self.strategies(), self.config.fractions, self.config.seeds,
                               metric.higher_is_better if metric else True, self.config.halving_rate)
        trials = self.store.trials().set_index("id") if ready else pd.DataFrame()
        histories = self.store.histories() if ready and len(trials) else {}
        paused = PausedTrials(self.folder)

        def standing(strategy: str, fraction: float, seed: int) -> TrialStanding:
            tid = trial_id(strategy, fraction, seed)
            if tid in trials.index:
                return TrialStanding(done=True, failed=trials.loc[tid, "status"] != "done", history=histories.get(tid))
            saved = paused.load(_folder_name(tid))
            if saved is None:
                return TrialStanding()
            history = saved["record"]["history"]
            return TrialStanding(rung=history[-1]["rung"], history=history)

        return search.next_round(standing, f"val_{metric.name}" if metric else "val_score", self.executor.width)

    def search_states(self) -> list:
        """Where a layer-wise search stands at each fraction (:class:`~medtransfer.study.search.ChainState`)."""
        if self.config.search != "layerwise" or not self.store.exists():
            return []
        search, records = self._search()
        if records is None:
            return []
        done = self.store.finished_ids()
        return search.states(records.validation, lambda s, f, seed: trial_id(s, f, seed) in done)

    # -- running -----------------------------------------------------------------------------------------
    def run(self, progress=None, log=print) -> StudySummary:
        """Run every pending trial; ``progress`` is a rich Progress (or None), ``log`` prints one line per trial."""
        for strategy in self.strategies():  # K out of range fails before any work
            parse_strategy(strategy).validate(self.num_groups)
        plan, pending = self.plan(), self.pending()
        self.tracking.warn_with(log)
        if pending or (self.store.exists() and plan):  # a finished study reads its data too: they may have changed
            run_config, prepared, images, fingerprint = self._read_data((pending or plan)[0], progress, log)
            if self._check_data(prepared, fingerprint, log):  # a new study beside it: all of its plan is pending
                plan, pending = self.plan(), self.pending()
        if pending:
            if not self.store.exists():
                self.store.create(self.config.to_dict(), self.config.hash(), {**environment(), "device": self.device})
            self.store.upgrade()
            self.store.set_meta("data", prepared.card() | {"source": str(self.config.data)})
            if self.store.blob(FINGERPRINT) is None:
                self.store.put_blob(FINGERPRINT, fingerprint.to_json().encode())
            self._store_task_and_examples(run_config, prepared, images)
            self.tracking.start()
            started = time.perf_counter()
            rounds = self.config.search in ("layerwise", "halving")  # these searches plan one round at a time
            may_run = self.strategies() if rounds else [t.strategy for t in pending]
            cache = build_cache(self._run_config(pending[0]), prepared, images,
                                [parse_strategy(s) for s in dict.fromkeys(may_run)], memory_budget=self.cache_memory,
                                spill_dir=self.folder / "cache", progress=progress, log=log)
            if cache is not None:
                log(f"frozen layers cached for {len(cache.boundaries)} depths in {time.perf_counter() - started:.0f} s "
                    f"({cache.storage})")
            overall = (progress.add_task("trials", total=len(plan), completed=len(self.store.finished_ids()))
                       if progress else None)
            self._metric = study_task(self.store).metric
            work = TrialWork(self.config, self.device, self.executor.where(self.device), self.folder, prepared,
                             images, cache, self.config.halving_rate if self.config.search == "halving" else None)
            shutil.rmtree(self.folder / STAGED, ignore_errors=True)  # models of trials a killed run left unfinished

            def accept(report: TrialReport) -> None:
                self._accept(report, log)
                if progress is not None:
                    progress.update(overall, completed=len(self.store.finished_ids()))

            try:
                while pending:  # the grid in one round; a layer-wise search one depth per round, halving one rung
                    self.executor.run(pending, work, accept, progress=progress, log=log,
                                      failed=functools.partial(self._failed, log=log))
                    pending = self.pending() if rounds else []
                    if pending and progress is not None:
                        progress.update(overall, completed=len(self.store.finished_ids()))
                        if self.config.search == "layerwise":
                            progress.update(overall, total=len(self.store.finished_ids()) + len(pending))
            except KeyboardInterrupt:
                done = len(self.store.finished_ids())
                raise StudyInterrupted(
                    f"interrupted: {done} trials are saved in {self.folder}; the trials in flight were not. Run the "
                    f"same command again to resume."
                ) from None
            finally:
                if progress is not None:
                    progress.remove_task(overall)
                shutil.rmtree(self.folder / STAGED, ignore_errors=True)
                if cache is not None and cache.storage == "memmap":
                    shutil.rmtree(self.folder / "cache", ignore_errors=True)
        if self.store.exists():
            self._record_search()
            self._set_rule(log)
        summary = self.summary()
        self._write_summary(summary)
        self._write_model_cards(summary)
        self.tracking.finish(summary)
        return summary

    def _read_data(self, trial: Trial, progress, log):
        """The data as ``trial`` reads them (its config, the split data, the loaded images and their fingerprint);
        bad data or options fail here, before anything is written. The source's notices are logged once per run."""
        run_config = self._run_config(trial)
        prepared = prepare_data(run_config)
        for notice in notice_lines(prepared.data.notices):
            log(notice)
        images = TrialImages.load(prepared, self.config.input_size, progress)
        return run_config, prepared, images, data_fingerprint(prepared, images, self.config.data)

    def _record_search(self) -> None:
        """What a layer-wise or halving search decided, in the store's meta (for the report and a resume)."""
        if self.config.search == "layerwise":
            self.store.set_meta("search", {"kind": self.config.search, "patience_depth": self.config.patience_depth,
                                           "chains": [st.__dict__ for st in self.search_states()]})
        elif self.config.search == "halving":
            self.store.set_meta("search", {"kind": "halving", "rate": self.config.halving_rate,
                                           "pruned": self._pruned()})
            PausedTrials(self.folder).tidy()

    def _set_rule(self, log) -> None:
        """Record the recommendation rule asked for now: it reads the trials and changes none of them, so a
        finished study is chosen again under another rule without training."""
        stored = self.store.config()
        if stored.get("recommend", "argmax") != self.config.recommend:
            log(f"recommendation rule: {self.config.recommend} (was {stored.get('recommend', 'argmax')})")
            self.store.set_config({**stored, "recommend": self.config.recommend}, self.config.hash())

    def _pruned(self) -> list[dict]:
        """The trials successive halving stopped: strategy, fraction, seed, the rung and the epoch."""
        trials = self.store.trials()
        if not len(trials):
            return []
        histories = self.store.histories()
        return [{"strategy": r.strategy, "fraction": float(r.fraction), "seed": int(r.seed),
                 "rung": (histories.get(r.id) or [{}])[-1].get("rung"), "epoch": int(r.epochs_run)}
                for r in trials[trials.stopped == "pruned"].itertuples()]

    def _write_model_cards(self, summary: StudySummary) -> None:
        """``MODEL_CARD.md`` in every saved model's folder, saying why its strategy was (or was not) chosen."""
        from medtransfer.model.card import write_model_card

        meta = self.store.meta() if self.store.exists() else {}
        data = json.loads(meta.get("data") or "{}")
        env = json.loads(meta.get("environment") or "null") or environment()
        metric, trials = study_task(self.store).metric, self.results()
        for folder in sorted((self.folder / "models").glob("*")):
            try:
                spec = json.loads((folder / "model.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            s = spec.get("strategy")
            why = (f"the study's recommendation, by {rule_sentence(summary.rule, metric.label)}, among "
                   f"{summary.table.strategy.nunique()} strategies (the test split was not used to choose)."
                   if s == summary.recommended else
                   f"kept by the study as the best validation trial of '{s}'; the study recommends "
                   f"'{summary.recommended}' instead.")
            trial = trials[trials.id == spec.get("trial")] if len(trials) else trials
            used = {"train_used": int(trial.train_size.iloc[0])} if len(trial) else {}
            card = {**data, "counts": {**data.get("counts", {}), **used}}
            write_model_card(folder, spec, spec.get("test_metrics", {}), card, env, choice=why,
                             metric=metric.name)

    def _check_data(self, prepared: PreparedData, fingerprint: DataFingerprint, log) -> bool:
        """Refuse to go on with data that differ from what the finished trials read, or, with ``new_folder``, start
        a new study beside this one (True)."""
        what = data_changes(self.store, prepared.split.counts(), fingerprint)
        if what is None:
            return False
        if not self.new_folder:
            raise ConfigError(changed_data_message(self.config.data, self.folder, what))
        self.folder = self._choose_folder(_free_folder(self.folder), False)
        self.store = StudyStore(self.folder)
        log(f"the data changed since the study started ({what}); starting a new study in {self.folder}")
        return True

    def _store_task_and_examples(self, run_config: RunConfig, prepared: PreparedData, images: TrialImages) -> None:
        """The task's spec, and the test images the report shows with their targets, so that the report needs
        neither the data nor the task's source again."""
        train_targets = images.rows(prepared.split.train)[1]
        task = prepared.task.for_data(prepared.data, train_targets, run_config)
        self.store.set_meta("task", task.config())
        test = prepared.split.test
        test_images, test_targets = images.rows(test)
        chosen = task.examples(prepared.data, test, test_targets)
        self.store.put_blob(EXAMPLES, encode_examples(
            images=test_images[chosen].numpy(), targets=task.take(test_targets, chosen),
            refs=[prepared.data.samples[int(test[i])].ref for i in chosen]))

    def _run_config(self, trial: Trial) -> RunConfig:
        return self.config.run_config(trial.strategy, trial.fraction, trial.seed, self.device)

    def _accept(self, report: TrialReport, log) -> None:
        """Keep (or drop) a finished trial's model, then record the trial: here, the one writer of the store. A
        trial paused at a halving rung is only logged: its worker saved it."""
        trial = report.trial
        if report.record.get("status") == "paused":
            log(report.line)
            return
        if report.staged is not None:
            self._keep_checkpoint(trial, Path(report.staged), report.record["val_score"])
        self.store.record(strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed, **report.record)
        PausedTrials(self.folder).drop(_folder_name(trial.id))
        log(report.line)
        self.tracking.trial_done(trial.id)

    def _failed(self, trial: Trial, reason: str, log=print) -> None:
        """A trial that its executor gave up on (its worker died every time it ran it)."""
        self.store.record(strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed, status="failed",
                          error=reason, device=self.executor.where(self.device))
        PausedTrials(self.folder).drop(_folder_name(trial.id))
        log(failed_line(trial.label(), reason))
        self.tracking.trial_done(trial.id)

    def _keep_checkpoint(self, trial: Trial, staged: Path, val_score: float) -> None:
        """``staged`` becomes ``models/<trial>`` (policy ``all``), or ``models/<strategy>`` when it is the strategy's
        best validation trial so far (policy ``best``); else it is dropped."""
        if self.config.checkpoints == "all":
            _replace_folder(staged, self.folder / "models" / _folder_name(trial.id))
            return
        trials = self.store.trials()
        previous = complete_trials(trials)
        previous = previous[previous.strategy == trial.strategy] if len(previous) else previous
        metric = self._metric
        best_so_far = previous.val_score.max() if metric.higher_is_better else previous.val_score.min()
        if len(previous) and not metric.better(val_score, best_so_far):
            shutil.rmtree(staged, ignore_errors=True)
            return
        _replace_folder(staged, self.folder / "models" / trial.strategy.replace(":", "-"))

    # -- results -----------------------------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        """One row per finished or failed trial."""
        return self.store.trials() if self.store.exists() else pd.DataFrame()

    def summary(self) -> StudySummary:
        return summarize(self.store, study_task(self.store))

    def _write_summary(self, summary: StudySummary) -> None:
        atomic_write(self.folder / "summary.csv", summary.table.to_csv(index=False))
        atomic_write(self.folder / "summary.json", json.dumps(summary.to_dict(), indent=2, default=float))
        atomic_write(self.folder / "trials.csv", self.results().to_csv(index=False))


def encode_examples(images: np.ndarray, targets, refs: list[str]) -> bytes:
    """The report's example images as one ``.npz`` (no pickle): ``images``, ``targets`` (an array, or JSON text
    when the targets are ragged) and ``refs``."""
    arrays = {"images": np.asarray(images), "refs": np.asarray(refs, dtype=str)}
    items = [t.numpy() if hasattr(t, "numpy") else np.asarray(t) for t in targets]
    try:
        arrays["targets"] = np.stack(items) if items else np.zeros(0)
    except ValueError:  # ragged: one JSON list per image
        arrays["targets_json"] = np.asarray(json.dumps([i.tolist() for i in items]))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def decode_examples(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "targets_json" in out:
        out["targets"] = [np.asarray(t) for t in json.loads(str(out.pop("targets_json")))]
    out["refs"] = [str(r) for r in out["refs"]]
    return out
