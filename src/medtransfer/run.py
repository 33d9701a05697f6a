"""One training run, the public API: ``train`` writes a run folder, ``evaluate`` re-scores a saved model.

The CLI's ``train`` and ``evaluate`` are thin wrappers over these. The work itself is the study's trial engine
(:func:`medtransfer.engine.run_trial`), run once.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medtransfer.config import RunConfig
from medtransfer.console import console
from medtransfer.data import ImageSet, load_images, make_split
from medtransfer.engine import (
    PreparedData,
    TrialImages,
    TrialOutcome,
    build_cache,
    data_fingerprint,
    environment,
    image_loader,
    prepare_data,
    run_trial,
    score_test_split,
)
from medtransfer.errors import ConfigError, DataError
from medtransfer.files import atomic_folder, atomic_write, check_output_folder, refuse_existing
from medtransfer.model.card import write_model_card
from medtransfer.model.saved import load_model, mark_complete, save_model
from medtransfer.plots import plot_reliability, plot_training_curve
from medtransfer.strategies import parse_strategy
from medtransfer.tracking import check_installed, parse_track
from medtransfer.tracking.single_run import track_run
from medtransfer.training import FitResult, TrainConfig, Trainer, resolve_device

__all__ = ["RunConfig", "RunResult", "evaluate", "train"]


@dataclass
class RunResult:
    out: Path
    metrics: dict
    fit: FitResult


def _history_csv(history: list[dict]) -> str:
    if not history:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    return buf.getvalue()


def _notice(message: str) -> None:
    console.print(message, highlight=False, markup=False)  # the message may quote file names


def _read_data(config: RunConfig, data: ImageSet | None, progress):
    """The run's data, split and loaded (its source's notices printed), and the frozen-prefix cache if any."""
    prepared = prepare_data(config, data)
    for notice in prepared.data.notices:
        _notice(notice)
    images = TrialImages.load(prepared, config.input_size, progress)
    cache = build_cache(config, prepared, images, [parse_strategy(config.strategy)], progress=progress, log=_notice)
    return prepared, images, cache


def train(config: RunConfig, out: str | Path, *, data: ImageSet | None = None, progress=None,
          overwrite: bool = False, track: list[str] | str | None = None,
          experiment: str | None = None) -> RunResult:
    """Train one network as ``config`` says and write the run folder ``out``.

    The folder holds ``model.safetensors`` + ``model.json``, ``metrics.json``, ``history.csv``, ``curve.png`` and
    ``test_predictions.csv``. It is written beside ``out`` and renamed into place only when the run has finished,
    so ``out`` never holds an unfinished run; an existing ``out`` is replaced only with ``overwrite``. On a
    non-finite loss nothing is written and :class:`~medtransfer.errors.TrainingDiverged` is raised. ``track``
    (``mlflow``, ``mlflow=URI``, ``tensorboard``) also logs the finished run there (:mod:`medtransfer.tracking`), in
    the MLflow experiment ``experiment`` (default: the run folder's name).
    """
    out = Path(out)
    check_output_folder(out, config.data)
    started = time.perf_counter()
    resolve_device(config.device)  # a bad --device fails before the data is read
    check_installed(parse_track(track))
    if experiment is not None and not str(experiment).strip():
        raise ConfigError("--experiment: give a non-empty name (or leave it out for the run folder's name)")
    refuse_existing(out, overwrite=overwrite, what="run folder")
    # the data are read before the folder is made: a read that fails (or never ends) leaves nothing behind
    prepared, images, cache = _read_data(config, data, progress)
    with atomic_folder(out, overwrite=overwrite, what="run folder") as folder:

        def on_best(model: torch.nn.Module, epoch: int, spec: dict) -> None:
            save_model(folder, model, {**spec, "epoch": epoch})

        outcome = run_trial(config, prepared, images, progress=progress, on_best=on_best, cache=cache)
        if outcome.diverged is not None:
            raise outcome.diverged  # no result from a failed run: the folder is removed
        metrics = _metrics(config, prepared, images, outcome, time.perf_counter() - started)
        _write_run(folder, config, prepared, outcome, metrics)
    track_run(track, out, metrics, outcome.fit.history, _notice, experiment)
    return RunResult(out=out, metrics=metrics, fit=outcome.fit)


def _metrics(config: RunConfig, prepared: PreparedData, images: TrialImages, outcome: TrialOutcome,
             seconds: float) -> dict:
    """``metrics.json``: the test and validation scores, how training went, the data (with the subset this run
    trained on) and the configuration and software it ran with."""
    fit, task = outcome.fit, outcome.task
    return {
        "task": task.name,
        "metric": task.scorer.metric.name,
        "strategy": outcome.strategy.name,
        "seed": config.seed,
        "train_fraction": config.train_fraction,
        "test": outcome.test_metrics,
        "val": {task.scorer.metric.name: outcome.val_score},
        "best_epoch": fit.best_epoch,
        "epochs_run": len(fit.history),
        "stopped": fit.stopped,
        "cached_prefix": fit.cached,
        "train_seconds": fit.seconds,
        "total_seconds": seconds,
        "trainable_parameters": outcome.trainable_parameters,
        "device": outcome.device,
        **({"calibration": outcome.calibration.summary} if outcome.calibration else {}),
        "data": (prepared.card(outcome.train_idx)
                 | {"fingerprint": data_fingerprint(prepared, images, config.data).digest}),
        "config": config.to_dict(),
        "environment": environment(),
    }


def _write_run(folder: Path, config: RunConfig, prepared: PreparedData, outcome: TrialOutcome,
               metrics: dict) -> None:
    """The run folder's files beside the model: metrics, history, test predictions, curves and the model card."""
    fit, task = outcome.fit, outcome.task
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write(folder / "history.csv", _history_csv(fit.history))
    atomic_write(folder / "test_predictions.csv",
                 task.writer.predictions_csv(prepared.split.test, outcome.test_predictions, outcome.test_targets,
                                             uncalibrated=outcome.uncalibrated_test_predictions))
    if outcome.calibration is not None:
        plot_reliability(outcome.calibration.curves, folder, what="test split")
    if fit.history:
        plot_training_curve(fit.history, folder / "curve.png", metric=task.scorer.metric.name, label=task.scorer.metric.label,
                            title=f"{prepared.data.name} · {config.backbone} · {outcome.strategy.name} · "
                                  f"seed {config.seed}")
    write_model_card(folder, outcome.spec, metrics["test"], metrics["data"], metrics["environment"],
                     choice=f"chosen when training ('medtransfer train --strategy {outcome.strategy.name}'); a "
                            f"study compares it with the other depths.", metric=task.scorer.metric.name)
    mark_complete(folder, outcome.spec)


def evaluate(run_dir: str | Path, data: str, *, split: str = "test", split_seed: int | None = None,
             device: str = "auto", source_options: dict | None = None) -> dict:
    """Score the model saved in ``run_dir`` on ``split`` ('train', 'val', 'test' or 'all') of ``data``."""
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split {split!r} must be train, val, test or all")
    dev = resolve_device(device)
    saved = load_model(run_dir, dev)
    images = saved.task.inputs.read(str(data), **(source_options or {}))
    if images.class_names != saved.task.class_names:
        raise DataError(
            f"{data}: classes {images.class_names} differ from the model's {saved.task.class_names}; "
            f"evaluate on data with the same classes"
        )
    if split == "all":
        idx = np.arange(len(images.samples))
    else:
        run_metrics = Path(run_dir) / "metrics.json"
        config = json.loads(run_metrics.read_text())["config"] if run_metrics.is_file() else {}
        seed = split_seed if split_seed is not None else config.get("split_seed", 0)
        test_fraction = config.get("test_fraction") or saved.task.inputs.test_fraction
        idx = getattr(make_split(images, seed=seed, test_fraction=test_fraction), split)
    x = load_images(images, idx, saved.input_size)
    loader = image_loader(saved.task, x, saved.task.codec.load_targets(images, idx, saved.input_size), 64)
    trainer = Trainer(saved.task, TrainConfig(), dev)
    predictions, targets = score_test_split(trainer, saved.net, loader, images, idx)
    return {"data": str(data), "split": split, "n": int(len(idx)),
            "metrics": saved.task.scorer.evaluate(predictions, targets)}
