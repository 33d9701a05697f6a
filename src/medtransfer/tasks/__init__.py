"""Tasks: what differs between classification, segmentation and detection; everything else is shared."""

from medtransfer.tasks.base import Task
from medtransfer.tasks.classification import ClassificationTask, balanced_class_weights
from medtransfer.tasks.segmentation import SegmentationTask

#: Task name -> class; ``--task`` chooses among these.
TASKS: dict[str, type[Task]] = {t.name: t for t in (ClassificationTask, SegmentationTask)}



def task_of(data) -> type[Task]:
    """The task a data set is for: image + mask pairs are segmentation, labelled images classification."""
    from medtransfer.data.sources.segmentation import SegmentedImages

    return SegmentationTask if isinstance(data, SegmentedImages) else ClassificationTask


__all__ = ["TASKS", "ClassificationTask", "SegmentationTask", "Task", "balanced_class_weights", "task_of"]
