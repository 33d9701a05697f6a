"""Running a study: every (strategy, training fraction, seed) trial, resumable, one durable record per trial.

The data are read, split and resized once; each trial then trains on its nested subset of the training split and is
scored on the same validation and test splits. Finished trials are skipped when the same command runs again.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.backbones import create_backbone
from medtransfer.errors import ConfigError, MedTransferError
from medtransfer.files import StorageError, atomic_write
from medtransfer.run import (
    PreparedData,
    RunConfig,
    TrialImages,
    build_cache,
    environment,
    prepare_data,
    run_trial,
)
from medtransfer.saved_model import save_model
from medtransfer.strategies import layerwise_strategies, parse_strategy
from medtransfer.study.config import StudyConfig
from medtransfer.study.store import StoreError, StudyStore, trial_id
from medtransfer.study.summary import (
    StudySummary,
    metric_label,
    strategy_order,
    summarize,
)
from medtransfer.tasks import TASKS, Task
from medtransfer.training import resolve_device


class StudyInterrupted(MedTransferError):
    """Ctrl-C: every finished trial is saved; running the same command again resumes."""


@dataclass(frozen=True)
class Trial:
    strategy: str
    fraction: float
    seed: int

    @property
    def id(self) -> str:
        return trial_id(self.strategy, self.fraction, self.seed)

    def label(self) -> str:
        return f"{self.strategy} · {self.fraction:.0%} · seed {self.seed}"


def _free_folder(folder: Path) -> Path:
    for i in itertools.count(2):
        candidate = folder.with_name(f"{folder.name}-{i}")
        if not candidate.exists():
            return candidate
    raise AssertionError  # pragma: no cover


class Study:
    """``Study(config, folder).run()`` runs the grid into ``folder``; :meth:`results` is a DataFrame of trials.

    If ``folder`` holds a study with another configuration, it stops with an error, or with ``new_folder=True``
    writes to ``folder-2`` (``-3``, …) instead. Results of two configurations are never mixed.
    """

    def __init__(self, config: StudyConfig, folder: str | Path, *, device: str = "auto", new_folder: bool = False,
                 cache_memory: int | None = None):
        self.config = config
        self.cache_memory = cache_memory
        self.device = str(resolve_device(device))
        self.folder = self._choose_folder(Path(folder), new_folder)
        self.store = StudyStore(self.folder)
        self._num_groups: int | None = None

    # -- folder and plan ---------------------------------------------------------------------------------
    def _choose_folder(self, folder: Path, new_folder: bool) -> Path:
        store = StudyStore(folder)
        if store.exists():
            store.check()
            stored = store.meta().get("config_hash")
            if stored != self.config.hash():
                if new_folder:
                    return self._choose_folder(_free_folder(folder), False)
                old = store.config()
                changed = sorted(k for k, v in self.config.to_dict().items() if old.get(k) != v)
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
        return TASKS[self.config.task_name]

    @property
    def num_groups(self) -> int:
        if self._num_groups is None:
            backbone = create_backbone(self.config.backbone, weights="scratch")
            self._num_groups = len(self.task.layout(backbone)[0])
        return self._num_groups

    def strategies(self) -> list[str]:
        if self.config.strategies is not None:
            return sorted(self.config.strategies, key=strategy_order)
        return [s.name for s in layerwise_strategies(self.num_groups)]

    def plan(self) -> list[Trial]:
        """Largest fraction first, so the recommendation's evidence comes earliest; then seed, then depth."""
        return [Trial(s, f, seed) for f in self.config.fractions for seed in self.config.seeds for s in self.strategies()]

    def pending(self) -> list[Trial]:
        done = self.store.finished_ids() if self.store.exists() else set()
        return [t for t in self.plan() if t.id not in done]

    # -- running -----------------------------------------------------------------------------------------
    def run(self, progress=None, log=print) -> StudySummary:
        """Run every pending trial; ``progress`` is a rich Progress (or None), ``log`` prints one line per trial."""
        for strategy in self.strategies():  # K out of range fails before any work
            parse_strategy(strategy).validate(self.num_groups)
        if not self.store.exists():
            self.store.create(self.config.to_dict(), self.config.hash(), {**environment(), "device": self.device})
        plan, pending = self.plan(), self.pending()
        if pending:
            prepared = prepare_data(self._run_config(pending[0]))
            images = TrialImages.load(prepared, self.config.input_size, progress)
            self.store.set_meta("data", prepared.card() | {"source": str(self.config.data)})
            started = time.perf_counter()
            cache = build_cache(self._run_config(pending[0]), prepared, images,
                                [parse_strategy(t.strategy) for t in pending], memory_budget=self.cache_memory,
                                spill_dir=self.folder / "cache", progress=progress, log=log)
            if cache is not None:
                log(f"frozen layers cached for {len(cache.boundaries)} depths in {time.perf_counter() - started:.0f} s "
                    f"({cache.storage})")
            overall = progress.add_task("trials", total=len(plan), completed=len(plan) - len(pending)) if progress else None
            try:
                for trial in pending:
                    if progress is not None:
                        progress.update(overall, description=f"trials · {trial.label()}")
                    try:
                        self._run_one(trial, prepared, images, progress, log, cache)
                    except KeyboardInterrupt:
                        done = len(self.store.finished_ids())
                        raise StudyInterrupted(
                            f"interrupted: {done} of {len(plan)} trials are saved in {self.folder}; the trial in flight "
                            f"({trial.label()}) was not. Run the same command again to resume."
                        ) from None
                    if progress is not None:
                        progress.advance(overall)
            finally:
                if progress is not None:
                    progress.remove_task(overall)
                if cache is not None and cache.storage == "memmap":
                    shutil.rmtree(self.folder / "cache", ignore_errors=True)
        summary = self.summary()
        self._write_summary(summary)
        return summary

    def _run_config(self, trial: Trial) -> RunConfig:
        return self.config.run_config(trial.strategy, trial.fraction, trial.seed, self.device)

    def _run_one(self, trial: Trial, prepared: PreparedData, images: TrialImages, progress, log, cache) -> None:
        started = time.perf_counter()
        try:
            outcome = run_trial(self._run_config(trial), prepared, images, progress=progress, cache=cache)
        except (KeyboardInterrupt, StorageError, StoreError):
            raise
        except Exception as e:  # a failed trial is recorded and the study goes on
            message = str(e) if isinstance(e, MedTransferError) else f"{type(e).__name__}: {e}"
            self._log_traceback(trial)
            self.store.record(strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed, status="failed",
                              error=message, seconds=time.perf_counter() - started, device=self.device)
            log(f"[red]✗[/red] {trial.label()}: failed: {message}")
            return
        if outcome.diverged is None:
            self._keep_checkpoint(trial, outcome)
        fit = outcome.fit
        self.store.record(
            strategy=trial.strategy, fraction=trial.fraction, seed=trial.seed,
            status="failed" if outcome.diverged else "done",
            error=str(outcome.diverged) if outcome.diverged else None,
            val_score=outcome.val_score, test_metrics=outcome.test_metrics, best_epoch=fit.best_epoch,
            epochs_run=len(fit.history), stopped=fit.stopped,
            train_size=int(round(len(prepared.split.train) * trial.fraction)),
            trainable_parameters=outcome.trainable_parameters, seconds=time.perf_counter() - started,
            device=outcome.device, history=fit.history, samples=prepared.split.test, **self._predictions(outcome),
        )
        metric = outcome.task.selection_metric
        name = metric_label(metric)
        log(f"[green]✓[/green] {trial.label()}: test {name} {outcome.test_metrics[metric]['value']:.3f}, "
            f"val {name} {outcome.val_score:.3f}, "
            f"{len(fit.history)} epochs, {time.perf_counter() - started:.0f} s")

    @staticmethod
    def _predictions(outcome) -> dict:
        """What the store keeps per test case: probabilities (for AUC), or each image's score (Dice)."""
        scores = outcome.task.case_scores(outcome.test_probs, outcome.test_targets)
        if scores is None:
            return {"targets": outcome.test_targets, "probs": outcome.test_probs}
        return {"targets": np.zeros(len(scores), dtype=np.int64), "probs": np.asarray(scores)[:, None]}

    def _keep_checkpoint(self, trial: Trial, outcome) -> None:
        policy = self.config.checkpoints
        if policy == "none":
            return
        if policy == "all":
            save_model(self.folder / "models" / trial.id.replace("|", "_").replace(":", "-"), outcome.weights_module,
                       {**outcome.spec, "trial": trial.id})
            return
        trials = self.store.trials()
        previous = trials[(trials.strategy == trial.strategy) & (trials.status == "done")] if len(trials) else trials
        if len(previous) and previous.val_score.max() >= outcome.val_score:
            return
        save_model(self.folder / "models" / trial.strategy.replace(":", "-"), outcome.weights_module,
                   {**outcome.spec, "trial": trial.id, f"val_{outcome.task.selection_metric}": outcome.val_score})

    def _log_traceback(self, trial: Trial) -> None:
        try:
            with open(self.folder / "failures.log", "a") as f:
                f.write(f"== {trial.id} ==\n{traceback.format_exc()}\n")
        except OSError:
            pass

    # -- results -----------------------------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        """One row per finished or failed trial."""
        return self.store.trials() if self.store.exists() else pd.DataFrame()

    def summary(self) -> StudySummary:
        data = self.store.meta().get("data")
        label_kind = json.loads(data).get("label_kind", "binary") if data else "binary"
        return summarize(self.store, label_kind, task=self.task.name)

    def _write_summary(self, summary: StudySummary) -> None:
        atomic_write(self.folder / "summary.csv", summary.table.to_csv(index=False))
        atomic_write(self.folder / "summary.json", json.dumps(summary.to_dict(), indent=2, default=float))
        atomic_write(self.folder / "trials.csv", self.results().to_csv(index=False))
