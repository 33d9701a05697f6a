"""What a task reads and its options: its sources, the layouts they read, its own settings, its split checks, its
defaults for the shared settings, and which test images the report shows. None of it needs the data read first."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medtransfer.data.sources import open_source
from medtransfer.errors import ConfigError, parameter_error


@dataclass(frozen=True)
class TaskOptions:
    """A task's own settings (``task_options`` in a config, ``--option KEY=VALUE`` on the command line). A task
    subclasses this dataclass; :meth:`TaskInputs.options` validates a mapping against it."""

    def problems(self) -> list[str]:
        """What is wrong with the values, one sentence each (checked after the types)."""
        return []


@dataclass(eq=False)
class TaskInputs:
    """What a task reads, and its options. A task with other split checks, facts or examples subclasses it."""

    name: str = ""  #: the task's name, set by :class:`~medtransfer.tasks.base.Task`, for messages
    #: the source classes (:class:`~medtransfer.data.sources.base.Source`) that read data for this task
    sources: tuple[type, ...] = ()
    #: the container its sources read (an :class:`~medtransfer.data.ImageSet` subclass)
    data_type: type = object
    #: when the task is told from the data's layout, tasks with a higher priority are asked first
    detect_priority: int = 0
    #: how the data must be laid out, for the error when nothing recognises a path
    layouts: str = ""
    #: this task's options
    options_type: type[TaskOptions] = TaskOptions
    #: the share of the data a seeded split puts in test (validation is always 10 %)
    test_fraction: float = 0.2
    #: the task's own defaults for the shared settings (``input_size``, ``augmentation``, ``train: {…}``), measured
    #: for it; they apply where a user sets nothing (:meth:`~medtransfer.config.Settings.with_recipe`)
    recipe: dict = field(default_factory=dict)
    #: how many test images the report shows at most
    examples_limit: int = 8

    def recipe_for(self, spec: str, **options) -> dict:
        """The :attr:`recipe` for the data at ``spec`` (read with the source ``options``): a task whose defaults
        follow the data (detection's input size follows the stored images' size) overrides this."""
        return dict(self.recipe)

    def options(self, values: dict | None) -> TaskOptions:
        """``values`` checked against :attr:`options_type`: unknown names, wrong types and bad values, all at once."""
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(self.options_type)}
        takes = f"one of its options ({', '.join(known)})" if known else "empty (the task takes no options)"
        problems = [parameter_error("task_options", f"the {self.name} task", takes, k) for k in values if k not in known]
        for k, v in values.items():
            f = known.get(k)
            if f is not None and not _type_fits(v, f.default):
                problems.append(parameter_error(k, f"the {self.name} task options", f"a {type(f.default).__name__}", v))
        if problems:
            raise ConfigError("\n".join(problems))
        opts = self.options_type(**values)
        problems = opts.problems()
        if problems:
            raise ConfigError("\n".join(problems))
        return opts

    def recognises(self, spec: str) -> bool:
        """Whether one of this task's sources recognises ``spec``'s layout."""
        return any(s.can_open(str(spec)) for s in self.sources)

    def read(self, spec: str, **options):
        """Read ``spec`` with the first of this task's sources that recognises it."""
        return open_source(spec, sources=self.sources, layouts=self.layouts, purpose=self.name, **options).read()

    def describe(self, data, parts: dict[str, np.ndarray]) -> dict:
        """Per-part facts for the dataset card (``parts``: name -> sample indices)."""
        return {}

    def check_split(self, data, split) -> None:
        """Raise a :class:`~medtransfer.errors.DataError` when ``split`` (a
        :class:`~medtransfer.data.DataSplit`) cannot give this task's metric a meaning, before anything trains."""

    def examples(self, data, test_idx: np.ndarray, targets: Sequence) -> np.ndarray:
        """Positions in ``test_idx`` of the test images the report shows (``targets`` are theirs, aligned).
        By default up to :attr:`examples_limit`, spread evenly through the test split."""
        n, limit = len(test_idx), self.examples_limit
        return np.unique(np.linspace(0, n - 1, min(limit, n)).round().astype(int)) if n else np.zeros(0, int)


def _type_fits(value, default) -> bool:
    """Whether ``value`` has the type of an option's ``default`` (an int does for a float; no default: anything)."""
    if default is None or default is dataclasses.MISSING:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
