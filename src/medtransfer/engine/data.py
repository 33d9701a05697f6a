"""A trial's data: the source read for its task and split, and each trial's own training subset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtransfer.config import RunConfig
from medtransfer.data import ImageSet, make_split
from medtransfer.data.splits import DataSplit, check_split, training_subset
from medtransfer.errors import ConfigError
from medtransfer.tasks import Task, read_data, resolve_task
from medtransfer.tasks.registry import task_for_data


@dataclass
class PreparedData:
    """A source read for its task and split; what every trial of a study shares. Each trial draws its own training
    subset from ``split.train`` (:func:`trial_subset`)."""

    data: ImageSet
    task: Task
    split: DataSplit

    def card(self, train_used: np.ndarray | None = None) -> dict:
        """The dataset card: the split's counts (and per-part facts of the task) and the patients. With
        ``train_used`` (one trial's training subset) also that subset, as ``train_used``; without, the training
        split as a whole, as ``train``."""
        patients: dict[str, int] = {}
        for s in self.data.samples:
            if s.patient_id:
                patients[s.patient_id] = patients.get(s.patient_id, 0) + 1
        per = sorted(patients.values())
        used = {} if train_used is None else {"train_used": len(train_used)}
        parts = {"train_used": train_used} if train_used is not None else {"train": self.split.train}
        return {
            "name": self.data.name,
            "task": self.task.name,
            "modality": self.data.modality,
            "classes": self.data.class_names,
            "split_given": self.split.given,
            "counts": {**used, **self.split.counts()},
            **({"patients": {"count": len(per), "images_per_patient": [per[0], per[len(per) // 2], per[-1]]}}
               if per else {}),
            **({"notices": list(self.data.notices)} if self.data.notices else {}),
            **self.task.inputs.describe(self.data, {**parts, "val": self.split.val, "test": self.split.test}),
        }


def prepare_data(config: RunConfig, data: ImageSet | None = None) -> PreparedData:
    """Read ``config.data`` for its task (or take ``data`` as read) and split it; the training subset of
    ``config`` is checked here, so that a subset too small for the task fails before anything is loaded."""
    if data is None:
        task, data = read_data(config.data, task=config.task, **config.source_options)
    else:
        task = task_for_data(data) if config.task == "auto" else resolve_task(config.task, config.data)
        if not isinstance(data, task.inputs.data_type):
            raise ConfigError(f"{config.data}: the task is {task.name}, but the data are laid out for another task")
    task.inputs.options(config.task_options)  # the options were given for the task the data turned out to be for
    split = make_split(data, seed=config.split_seed, test_fraction=config.test_fraction or task.inputs.test_fraction)
    task.inputs.check_split(data, split)
    prepared = PreparedData(data, task, split)
    trial_subset(config, prepared)
    return prepared


def trial_subset(config: RunConfig, prepared: PreparedData) -> np.ndarray:
    """The sample indices one trial trains on: ``config.train_fraction`` of the training split, drawn with
    ``config.seed``; checked against the task's needs."""
    split = prepared.split
    train_idx = training_subset(prepared.data, split.train, config.train_fraction, config.seed)
    check_split(prepared.data, DataSplit(train_idx, split.val, split.test, split.given))
    return train_idx
