"""A task, assembled from small parts, each an instance and each replaceable.

Sources, splits, strategies, the trainer, the cache, the study, its store and its report are shared by every task. A
task brings:

* ``inputs`` (:class:`~medtransfer.tasks.inputs.TaskInputs`): the sources it reads, its options, its split checks;
* ``codec`` (:class:`~medtransfer.tasks.targets.TargetCodec`): how its targets are loaded, batched, moved, augmented;
* ``head`` (:class:`~medtransfer.tasks.head.HeadFactory`): its head on the backbone's groups, and the network cut;
* ``scorer`` (:class:`~medtransfer.tasks.scorer.Scorer`): its loss, predictions, :class:`Metric` and calibration;
* ``writer`` (:class:`~medtransfer.tasks.writer.TaskWriter`): its predictions files and delivered outputs;
* ``report`` (:class:`~medtransfer.tasks.report.ReportSection`): what it adds to a study's report.

The first two need no data; the others follow the data (its classes, the task options): a registered task holds
``build`` and ``rebuild``, which assemble them (:class:`TaskParts`) for data being trained on
(:meth:`Task.for_data`) or from a saved spec (:meth:`Task.from_spec`). A task registers with
:func:`medtransfer.tasks.register_task`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from medtransfer.tasks.head import HeadFactory
from medtransfer.tasks.inputs import TaskInputs
from medtransfer.tasks.report import ReportSection
from medtransfer.tasks.scorer import Scorer
from medtransfer.tasks.targets import TargetCodec
from medtransfer.tasks.writer import TaskWriter


@dataclass(eq=False)
class TaskParts:
    """The parts of a task that follow its data. ``spec``: what rebuilds them (class names, options), stored with
    a saved model and a study; ``writer`` and ``report`` default to the plain ones."""

    head: HeadFactory
    scorer: Scorer
    writer: TaskWriter | None = None
    report: ReportSection | None = None
    spec: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Task:
    """A learning task: its name, its parts, and how it assembles the parts that follow the data. The task a
    registry holds has no data yet (``parts`` is ``None``; its ``head`` is :attr:`head_layout`); :meth:`for_data`
    and :meth:`from_spec` give one that has."""

    name: str
    inputs: TaskInputs
    codec: TargetCodec
    #: ``(data, train_targets, config) -> TaskParts``: the parts for a run's data and settings
    build: Callable[..., TaskParts]
    #: ``(spec) -> TaskParts``: the parts from a saved model's or a study's spec
    rebuild: Callable[[dict], TaskParts]
    parts: TaskParts | None = None
    #: the head factory of a task with no data yet, which answers only which groups its head reads
    #: (:meth:`~medtransfer.tasks.head.HeadFactory.layout`: a study plans its depths before reading the data)
    head_layout: HeadFactory = field(default_factory=HeadFactory)

    def __post_init__(self):
        if not self.inputs.name:
            object.__setattr__(self, "inputs", replace(self.inputs, name=self.name))

    def for_data(self, data, train_targets: Sequence, config) -> Task:
        """The task for ``data`` as a run's ``config`` sets it up, with what it learns from the training targets."""
        return replace(self, parts=self.build(data, train_targets, config))

    def from_spec(self, spec: dict) -> Task:
        """The task of a saved model or a study, from its :meth:`config`."""
        return replace(self, parts=self.rebuild(spec))

    def _assembled(self) -> TaskParts:
        if self.parts is None:
            raise RuntimeError(f"the {self.name} task has no data yet: use task.for_data(…) or task.from_spec(…)")
        return self.parts

    @property
    def head(self) -> HeadFactory:
        return self.parts.head if self.parts is not None else self.head_layout

    @property
    def scorer(self) -> Scorer:
        return self._assembled().scorer

    @property
    def writer(self) -> TaskWriter:
        parts = self._assembled()
        return parts.writer or TaskWriter(parts.scorer, self.class_names)

    @property
    def report(self) -> ReportSection:
        parts = self._assembled()
        return parts.report or ReportSection(self.name, parts.scorer.metric, self.class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._assembled().spec.get("class_names", []))

    def config(self) -> dict:
        """What is needed to rebuild this task (stored with a saved model and a study)."""
        parts = self._assembled()
        return {"task": self.name, **parts.spec, **parts.scorer.fitted()}
