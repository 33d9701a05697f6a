"""Tasks: what differs between classification, segmentation and any task a user registers; everything else is shared.

A task is a :class:`Task` assembled from small parts (:mod:`medtransfer.tasks.base` lists them) and registered with
:func:`register_task`. The built-in tasks register themselves on import.
"""

from medtransfer.tasks.base import Task, TaskParts
from medtransfer.tasks.head import HeadFactory
from medtransfer.tasks.inputs import TaskInputs, TaskOptions
from medtransfer.tasks.metric import Metric
from medtransfer.tasks.registry import (
    detect_task,
    get_task,
    read_data,
    register_task,
    resolve_task,
    task_from_spec,
    task_names,
)
from medtransfer.tasks.report import ReportSection
from medtransfer.tasks.scorer import Scorer
from medtransfer.tasks.targets import RaggedTargets, TargetCodec
from medtransfer.tasks.writer import PredictionWriter, TaskWriter
from medtransfer.tasks import classification, detection, segmentation  # noqa: E402,F401  (registration)

__all__ = ["HeadFactory", "Metric", "PredictionWriter", "RaggedTargets", "ReportSection", "Scorer", "TargetCodec",
           "Task", "TaskInputs", "TaskOptions", "TaskParts", "TaskWriter", "detect_task", "get_task", "read_data",
           "register_task", "resolve_task", "task_from_spec", "task_names"]
