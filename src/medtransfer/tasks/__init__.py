"""Tasks: what differs between classification, segmentation and detection; everything else is shared."""

from medtransfer.tasks.base import Task
from medtransfer.tasks.classification import ClassificationTask, balanced_class_weights

__all__ = ["ClassificationTask", "Task", "balanced_class_weights"]
