"""The task registry, in the manner of timm's model registry: a task registers once, and everything else asks here.

``register_task`` adds a :class:`~medtransfer.tasks.base.Task` under its ``name``; :func:`get_task` finds it by name,
:func:`detect_task` by the layout of a data set, :func:`task_from_spec` rebuilds one from a saved model or a study.
Nothing outside ``tasks/`` names a task.
"""

from __future__ import annotations

import os

from medtransfer.data.sources import open_source
from medtransfer.errors import ConfigError, DataError, did_you_mean
from medtransfer.tasks.base import Task

_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` available as ``--task task.name``. Registering a name again replaces it."""
    if not task.name:
        raise ConfigError("a task needs a name to register")
    _TASKS[task.name] = task
    return task


def task_names() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> Task:
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}{did_you_mean(str(name), _TASKS)}; choose one of "
                          f"{', '.join(_TASKS)} or auto")
    return _TASKS[name]


def _by_priority() -> list[Task]:
    return sorted(_TASKS.values(), key=lambda t: -t.inputs.detect_priority)


def detect_task(spec: str | os.PathLike) -> Task:
    """The task whose sources recognise ``spec``'s layout (tasks with a higher ``detect_priority`` asked first).
    When none does, the error says what each task reads."""
    ordered = _by_priority()
    for task in ordered:
        if task.inputs.recognises(str(spec)):
            return task
    fallback = fallback_task()
    layouts = "; or ".join(f"for {t.name}, {t.inputs.layouts}" for t in ordered if t.inputs.layouts)

    # the fallback's sources give the precise error (no such file, a misspelt dataset name, …)
    open_source(spec, sources=fallback.inputs.sources, layouts=layouts)
    raise DataError(f"{spec}: cannot tell how to read this. Give {layouts}.")  # pragma: no cover


def task_for_data(data) -> Task:
    """The task whose sources produce data sets like ``data`` (tasks with a higher ``detect_priority`` first)."""
    for task in _by_priority():
        if isinstance(data, task.inputs.data_type) and task.inputs.data_type is not object:
            return task
    raise ConfigError(f"no registered task reads data of type {type(data).__name__}; name the task")


def resolve_task(name: str, spec: str | os.PathLike) -> Task:
    """The task ``name``, or the one ``spec``'s layout tells when ``name`` is ``"auto"``."""
    return detect_task(spec) if name == "auto" else get_task(name)


def read_data(spec: str | os.PathLike, *, task: str = "auto", **options):
    """``(task, data)``: ``spec`` read by the task's sources (``task="auto"``: told by the layout)."""
    found = resolve_task(task, spec)
    return found, found.inputs.read(str(spec), **options)


def fallback_task() -> Task:
    """The task asked last when a task is told from the data's layout."""
    return min(_TASKS.values(), key=lambda t: t.inputs.detect_priority)


def task_from_spec(spec: dict) -> Task:
    """The task saved in a model's or a study's spec (its :meth:`~medtransfer.tasks.base.Task.config`)."""
    name = spec.get("task")
    if name not in _TASKS:
        raise DataError(f"the task {name!r} is not one of {', '.join(_TASKS)}; is the package that defines it imported?")
    return _TASKS[name].from_spec(spec)
