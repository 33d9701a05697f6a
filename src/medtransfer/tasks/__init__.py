"""Tasks: what differs between classification, segmentation and any task a user registers; everything else is shared.

A task is a :class:`Task` subclass registered with :func:`register_task`; see :mod:`medtransfer.tasks.base` for
what it brings. The built-in tasks register themselves on import.
"""

from medtransfer.tasks.base import Metric, ReportSection, Task, TaskOptions
from medtransfer.tasks.registry import (
    detect_task,
    get_task,
    read_data,
    register_task,
    resolve_task,
    task_from_spec,
    task_names,
)
from medtransfer.tasks import classification, detection, segmentation  # noqa: E402,F401  (registration)

__all__ = ["Metric", "ReportSection", "Task", "TaskOptions", "detect_task", "get_task", "read_data", "register_task",
           "resolve_task", "task_from_spec", "task_names"]
