"""What was written before the first release, read in one place: study stores of schema 1, study configs that kept
task options at the top level, model folders whose spec names no task or that predate the completion mark.

Nothing made now needs any of it; it is kept so that study folders from then resume as the same studies (their config
hash is computed over the layout they stored) and their models still load. Everything else reads the current layout.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path

import numpy as np

from medtransfer.tasks import Task, get_task, task_from_spec, task_names
from medtransfer.tasks.registry import fallback_task
from medtransfer.training.config import TrainConfig

#: Settings added after the first studies were made, with their defaults (see :func:`hashed_layout`); a nested
#: mapping holds those of a nested setting (``train``).
LATER_SETTINGS = {"task": "auto", "test_fraction": None, "precision": "auto", "fold_batchnorm": True,
                  "fast_depthwise": "auto", "train": {"budget_steps": TrainConfig.budget_steps},
                  "recommend": "argmax", "search": "grid", "patience_depth": 2, "halving_rate": 2}

#: study metrics that are a mean of a per-case score, which schema 1 stored in its ``probs`` column
PER_CASE_SCORES = ("dice",)


# -- study configs ---------------------------------------------------------------------------------------------------
def hashed_layout(d: dict, task: str) -> dict:
    """A study config's settings (``d``, from ``to_dict``) as the first versions stored them, which its hash is
    computed over: task options at the top level (those at their default left out), and the settings added
    later left out where they are at their default."""
    d = dict(d)
    d.update(_non_default_options(task, d.pop("task_options")))
    return _without_later_defaults(d, LATER_SETTINGS)


def task_options_from_top_level(raw: dict, known: set[str]) -> dict:
    """Pop the top-level keys of ``raw`` that are a registered task's options; those left at their default are
    dropped, the others returned (and ``task`` set to the owning task when it was ``auto``)."""
    moved = {}
    for key in [k for k in raw if k not in known]:
        owners = [t for t in task_names() if key in _defaults(t)]
        if not owners:
            continue
        value = raw.pop(key)
        if value != _defaults(owners[0])[key]:
            moved[key] = value
            if raw.get("task", "auto") == "auto" and len(owners) == 1:
                raw["task"] = owners[0]
    return moved


def _defaults(task: str) -> dict:
    return {f.name: f.default for f in fields(get_task(task).inputs.options_type)}


def _non_default_options(task: str, options: dict) -> dict:
    """``options`` without the entries equal to the task's defaults."""
    if not options or task == "auto":
        return dict(options or {})
    defaults = {k: v for k, v in _defaults(task).items() if v is not MISSING}
    return {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}


def _without_later_defaults(d: dict, later: dict) -> dict:
    """``d`` without the settings of ``later`` that are at their default, nested mappings included."""
    kept = {}
    for k, v in d.items():
        if isinstance(later.get(k), dict) and isinstance(v, dict):
            kept[k] = _without_later_defaults(v, later[k])
        elif not (k in later and v == later[k]):
            kept[k] = v
    return kept


# -- study stores ----------------------------------------------------------------------------------------------------
def schema1_columns(task: Task):
    """``(targets, probs) -> columns``: a schema-1 trial's record (a ``targets`` and a ``probs`` array) as the
    task's per-case columns. ``probs`` held the per-case score where the metric averages one, else probabilities."""
    name = task.scorer.metric.name
    if name in PER_CASE_SCORES:
        return lambda targets, probs: {name: np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)[:, 0]}
    return lambda targets, probs: {"targets": targets, "probs": probs}


def schema1_task(meta: dict) -> Task:
    """The task of a store that predates the stored task spec (schema 1), from its dataset card and config."""
    config = json.loads(meta.get("config", "{}"))
    card = json.loads(meta["data"]) if meta.get("data") else {}
    name = card.get("task") or (config.get("task") if config.get("task") not in (None, "auto") else fallback_task().name)
    spec = {**config, **(config.get("task_options") or {}), **card, "task": name,
            "class_names": card.get("classes") or ["class_0", "class_1"]}
    get_task(name)  # a clear error for a task that is not registered
    return task_from_spec(spec)


# -- model folders ---------------------------------------------------------------------------------------------------
def task_of_model(spec: dict) -> Task:
    """The task of a saved model's spec; specs from before they named their task are the fallback task's."""
    return task_from_spec(spec if spec.get("task") else {**spec, "task": fallback_task().name})


def finished_before_the_mark(run_dir: Path, spec: dict) -> bool:
    """Whether a model folder from before models were marked complete holds a finished run (it has metrics)."""
    return "complete" not in spec and (Path(run_dir) / "metrics.json").is_file()
