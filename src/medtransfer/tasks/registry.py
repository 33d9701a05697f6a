"""The task registry, in the manner of timm's model registry: a task registers once, and everything else asks here.

``register_task`` adds a :class:`~medtransfer.tasks.base.Task` subclass under its ``name``; :func:`get_task` finds it
by name, :func:`detect_task` by the layout of a data set, :func:`task_from_spec` rebuilds one from a saved model or a
study. Nothing outside ``tasks/`` names a task.
"""

from __future__ import annotations

import os

from medtransfer.errors import ConfigError, DataError, did_you_mean
from medtransfer.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available as ``--task cls.name``. Registering a name again replaces it."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__}: a task needs a name to register")
    _TASKS[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> type[Task]:
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}{did_you_mean(str(name), _TASKS)}; choose one of "
                          f"{', '.join(_TASKS)} or auto")
    return _TASKS[name]


def detect_task(spec: str | os.PathLike) -> type[Task]:
    """The task whose sources recognise ``spec``'s layout (tasks with a higher ``detect_priority`` asked first).
    When none does, the error says what each task reads."""
    ordered = sorted(_TASKS.values(), key=lambda t: -t.detect_priority)
    for task in ordered:
        if task.recognises(str(spec)):
            return task
    fallback = fallback_task()
    layouts = "; or ".join(f"for {t.name}, {t.layouts}" for t in ordered if t.layouts)
    from medtransfer.data.sources import open_source

    # the fallback's sources give the precise error (no such file, a misspelt dataset name, …)
    open_source(spec, sources=fallback.sources, layouts=layouts)
    raise DataError(f"{spec}: cannot tell how to read this. Give {layouts}.")  # pragma: no cover


def task_for_data(data) -> type[Task]:
    """The task whose sources produce data sets like ``data`` (tasks with a higher ``detect_priority`` first)."""
    for task in sorted(_TASKS.values(), key=lambda t: -t.detect_priority):
        if isinstance(data, task.data_type) and task.data_type is not object:
            return task
    raise ConfigError(f"no registered task reads data of type {type(data).__name__}; name the task")


def resolve_task(name: str, spec: str | os.PathLike) -> type[Task]:
    """The task ``name``, or the one ``spec``'s layout tells when ``name`` is ``"auto"``."""
    return detect_task(spec) if name == "auto" else get_task(name)


def read_data(spec: str | os.PathLike, *, task: str = "auto", **options):
    """``(task class, data)``: ``spec`` read by the task's sources (``task="auto"``: told by the layout)."""
    cls = resolve_task(task, spec)
    return cls, cls.read(str(spec), **options)


def fallback_task() -> type[Task]:
    """The task asked last when a task is told from the data's layout; also the task of a spec that names none
    (models saved before specs named their task)."""
    return min(_TASKS.values(), key=lambda t: t.detect_priority)


def task_from_spec(spec: dict) -> Task:
    """The task saved in a model's or a study's spec (its :meth:`~medtransfer.tasks.base.Task.config`)."""
    name = spec.get("task") or fallback_task().name
    if name not in _TASKS:
        raise DataError(f"the task {name!r} is not one of {', '.join(_TASKS)}; is the package that defines it imported?")
    return _TASKS[name].from_spec(spec)
