"""What a task brings to the shared machinery, and the defaults a new task inherits.

Sources, splits, strategies, the trainer, the cache, the study, its store and its report are shared by every task. A
task adds: the sources it reads, its own options, how its targets are loaded, batched and augmented, the head of its
network, its loss, its :class:`Metric` (with what the study stores per test case to recompute it), its predictions
file and its :class:`ReportSection`. A task registers itself with :func:`medtransfer.tasks.register_task`.

Targets travel as one item per sample (a class index, a mask, a list of boxes, …) in plain Python sequences or
arrays until :meth:`Task.collate` batches them; what a batch of targets is, and how it moves to a device, is the
task's business, so ragged targets pass through the loaders, the trainer and the cache unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from medtransfer.backbones import Backbone
from medtransfer.backbones.groups import LayerGroup
from medtransfer.errors import ConfigError, parameter_error
from medtransfer.networks import FrozenInPlace, FrozenPrefix, Normalize, TrainableSuffix, TransferNet
from medtransfer.strategies import Strategy


# -- the metric ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A task's study metric: what early stopping, the recommendation, the summary and the report speak.

    ``statistic(cases, resamples)`` scores one run's stored per-case columns (:meth:`Task.case_columns`) on each
    row of ``resamples`` (``R×N`` case indices) at once; row 0 of ``resamples`` is the cases as they are.
    """

    name: str  # the column stem: "auc" gives test_auc, val_auc, …
    label: str  # as written: "AUC"
    statistic: Callable[[dict, np.ndarray], np.ndarray] = field(repr=False, compare=False)
    higher_is_better: bool = True
    scale: str = ""  # what its values mean, for the reader: "0.5 = chance, 1 = perfect"
    chance: float | None = None  # drawn as a dotted line where there is one
    unit_interval: bool = True  # values lie in [0, 1]
    others: tuple[str, ...] = ()  # the other test metrics the results table shows
    headings: dict[str, str] = field(default_factory=dict)  # how the other metrics are written, where not by name

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is: ``sign * difference > 0`` means the first was better."""
        return 1 if self.higher_is_better else -1

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
        return bool(np.isfinite(a) and (not np.isfinite(b) or self.sign * (a - b) > 0))

    def worst(self) -> float:
        return -np.inf if self.higher_is_better else np.inf

    def heading(self, name: str) -> str:
        return self.headings.get(name, name.replace("_", " ", 1))  # the rest of "ap50_<class>" is a class name


# -- options ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskOptions:
    """A task's own settings (``task_options`` in a config, ``--option KEY=VALUE`` on the command line). A task
    subclasses this dataclass; :meth:`Task.options` validates a mapping against it."""

    def problems(self) -> list[str]:
        """What is wrong with the values, one sentence each (checked after the types)."""
        return []


# -- the report ------------------------------------------------------------------------------------------------------
class ReportSection:
    """What a task adds to a study's report. Every method has a default, so a new task needs none of them.

    ``facts`` is the report's :class:`~medtransfer.report.facts.StudyFacts`; figures are
    :class:`~medtransfer.plots.Figure` objects written into ``out_dir``.
    """

    #: what the new, always-trained part of the network is called in prose
    head = "head"

    def __init__(self, task: Task):
        self.task = task

    def describe_task(self, card: dict) -> str:
        """The task in a few words, for the dataset card."""
        return self.task.name

    def split_method(self) -> str:
        """How a seeded split is made, in words."""
        return "grouped by patient where known"

    def metrics_note(self, facts) -> str:
        """How the other test metrics were computed."""
        others = ", ".join(self.task.metric.heading(n) for n in self.task.metric.others)
        return f"{others} are computed on the test split as the task defines them." if others else ""

    def setup_items(self, config: dict) -> list[tuple[str, str]]:
        """Task-specific lines of the report's set-up list."""
        return []

    def figures(self, facts, out_dir) -> list:
        """Figures drawn from the stored per-case predictions (no model needed)."""
        return []

    def model_figures(self, facts, models: list[tuple[str, Any]], examples: dict, out_dir, *, models_note: str) -> list:
        """Figures that run saved models (``[(strategy, SavedModel), …]``) on the example test images the study
        stored (:meth:`Task.examples`)."""
        return []

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        """``(name, title, what is drawn per model)`` of the figures :meth:`model_figures` draws, for the notes
        shown in their place when no model is there."""
        return []


# -- predictions on new images ---------------------------------------------------------------------------------------
class PredictionWriter:
    """Writes what a saved model predicts for new, unlabelled images, batch by batch, into an output folder; a task
    returns one from :meth:`Task.prediction_writer`. ``images`` are
    :class:`~medtransfer.delivery.inputs.NewImage` objects (the path as given, the pixels at their own size, the
    model's input tensor); ``outputs`` are the network's raw outputs for them."""

    def add(self, images: list, outputs: torch.Tensor) -> None:
        raise NotImplementedError

    def close(self) -> list:
        """Finish the files; returns their paths."""
        return []


# -- the task --------------------------------------------------------------------------------------------------------
class Task(ABC):
    """A learning task. Subclass, set the class attributes, implement the abstract methods, and register it."""

    #: the registry name, ``--task NAME``
    name: ClassVar[str] = ""
    #: why ``medtransfer export`` cannot export this task's models, or ``None`` when it can
    export_refusal: ClassVar[str | None] = None
    #: the source classes (:class:`~medtransfer.data.sources.base.Source`) that read data for this task
    sources: ClassVar[tuple[type, ...]] = ()
    #: the container its sources read (an :class:`~medtransfer.data.ImageSet` subclass)
    data_type: ClassVar[type] = object
    #: when the task is told from the data's layout, tasks with a higher priority are asked first
    detect_priority: ClassVar[int] = 0
    #: how the data must be laid out, for the error when nothing recognises a path
    layouts: ClassVar[str] = ""
    #: this task's options
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    #: the share of the data a seeded split puts in test (validation is always 10 %)
    test_fraction: ClassVar[float] = 0.2
    #: the report section class
    Report: ClassVar[type[ReportSection]] = ReportSection
    #: the task's own defaults for the shared settings (``input_size``, ``augmentation``, ``train: {…}``), measured
    #: for it; they apply where a user sets nothing (:meth:`~medtransfer.config.Settings.with_recipe`)
    recipe: ClassVar[dict] = {}

    @classmethod
    def recipe_for(cls, spec: str, **options) -> dict:
        """The :attr:`recipe` for the data at ``spec`` (read with the source ``options``): a task whose defaults
        follow the data (detection's input size follows the stored images' size) overrides this."""
        return dict(cls.recipe)

    # -- options ---------------------------------------------------------------------------------------------
    @classmethod
    def options(cls, values: dict | None) -> TaskOptions:
        """``values`` checked against :attr:`Options`: unknown names, wrong types and bad values, all at once."""
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(cls.Options)}
        takes = f"one of its options ({', '.join(known)})" if known else "empty (the task takes no options)"
        problems = [parameter_error("task_options", f"the {cls.name} task", takes, k) for k in values if k not in known]
        for k, v in values.items():
            f = known.get(k)
            if f is not None and not _type_fits(v, f.default):
                problems.append(parameter_error(k, f"the {cls.name} task options", f"a {type(f.default).__name__}", v))
        if problems:
            raise ConfigError("\n".join(problems))
        opts = cls.Options(**values)
        problems = opts.problems()
        if problems:
            raise ConfigError("\n".join(problems))
        return opts

    # -- data ------------------------------------------------------------------------------------------------
    @classmethod
    def recognises(cls, spec: str) -> bool:
        """Whether one of this task's sources recognises ``spec``'s layout."""
        return any(s.can_open(str(spec)) for s in cls.sources)

    @classmethod
    def read(cls, spec: str, **options):
        """Read ``spec`` with the first of this task's sources that recognises it."""
        from medtransfer.data.sources import open_source

        return open_source(spec, sources=cls.sources, layouts=cls.layouts, purpose=cls.name, **options).read()

    @classmethod
    @abstractmethod
    def for_data(cls, data, train_targets: Sequence, config) -> Task:
        """The task for ``data`` as a run's ``config`` sets it up, with what it learns from the training targets."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: dict) -> Task:
        """The task of a saved model or a study, from its :meth:`config`."""

    @staticmethod
    @abstractmethod
    def load_targets(data, indices: np.ndarray, size: int) -> Sequence:
        """The targets of ``data.samples[indices]`` for images resized to ``size``: one item per sample, in a
        sequence that :meth:`take` can index."""

    @classmethod
    def describe(cls, data, parts: dict[str, np.ndarray]) -> dict:
        """Per-part facts for the dataset card (``parts``: name -> sample indices)."""
        return {}

    @classmethod
    def check_split(cls, data, split) -> None:
        """Raise a :class:`~medtransfer.errors.DataError` when ``split`` (a
        :class:`~medtransfer.data.DataSplit`) cannot give this task's metric a meaning, before anything trains."""

    def examples(self, data, test_idx: np.ndarray, targets: Sequence, limit: int = 8) -> np.ndarray:
        """Positions in ``test_idx`` of the test images the report shows (``targets`` are theirs, aligned).
        By default up to ``limit``, spread evenly through the test split."""
        n = len(test_idx)
        return np.unique(np.linspace(0, n - 1, min(limit, n)).round().astype(int)) if n else np.zeros(0, int)

    # -- targets ---------------------------------------------------------------------------------------------
    @staticmethod
    def take(targets: Sequence, rows) -> Sequence:
        """The targets at ``rows`` (positions), in the same kind of sequence."""
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(targets, (np.ndarray, torch.Tensor)):
            return targets[torch.as_tensor(rows)] if isinstance(targets, torch.Tensor) else targets[rows]
        return [targets[int(r)] for r in rows]

    def collate(self, items: list):
        """A batch of target items as the loss takes them (default: PyTorch's default collation)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def to_device(self, targets, device: torch.device):
        return targets.to(device, non_blocking=True)

    def gather(self, batches: list) -> Any:
        """Per-batch predictions or targets (on the CPU) as one container over all cases."""
        return torch.cat(batches).numpy()

    @classmethod
    def augment(cls, transform: Callable) -> Callable:
        """``(image, target) -> (image, target)`` with the image transform; targets that move with the image
        (masks, boxes) must be moved alike. By default the target is left as it is. No transform, no augmentation."""
        if transform is None:
            return None
        return lambda image, target: (transform(image), target)

    # -- the network -----------------------------------------------------------------------------------------
    @abstractmethod
    def head(self, backbone: Backbone, groups: list[LayerGroup], taps: list[int] | None) -> torch.nn.Module:
        """The new, always-trainable module after ``groups`` (this task's :meth:`layout`); with ``taps`` it takes
        the tapped groups' outputs as a tuple, shallow to deep."""

    def saved_weights(self, backbone: Backbone, groups: list[LayerGroup], head: torch.nn.Module) -> torch.nn.Module:
        """The module whose ``state_dict`` a saved model holds; its keys do not depend on the strategy's cut."""
        return backbone.model

    def groups(self, backbone: Backbone) -> list[LayerGroup]:
        """The backbone groups this task's network uses, shallow to deep; the strategies count these."""
        return self.layout(backbone)[0]

    @classmethod
    def layout(cls, backbone: Backbone) -> tuple[list[LayerGroup], list[int] | None]:
        """The groups, and the 0-based groups whose outputs the head also reads (``None``: only the last)."""
        return backbone.groups, None

    @staticmethod
    def cache_reads(frozen: int, taps: list[int] | None) -> int | tuple[int, ...]:
        """The group boundaries (1-based) a network cut after ``frozen`` groups reads from the prefix cache: one
        boundary, or the tapped boundaries within the prefix followed by the cut (the prefix's tuple output)."""
        if taps is None:
            return frozen
        return (*[t + 1 for t in taps if t < frozen], frozen)

    def build_network(self, backbone: Backbone, strategy: Strategy) -> TransferNet:
        """Cut ``backbone`` for ``strategy``: normalisation + frozen groups | trainable groups + head. The tapped
        outputs travel as a tuple through both halves. The backbone's groups train unless the cut freezes them
        (a network cut again from the same backbone, as ``lp-ft``'s second stage is, gets them back trainable)."""
        groups, taps = self.layout(backbone)
        k = strategy.frozen_groups(len(groups))
        head = self.head(backbone, groups, taps)
        modules = [g.module.requires_grad_(True) for g in groups]
        # the prefix returns what a cached trial reads: Normalize sits at position 0, so group boundary b is position b
        prefix = FrozenPrefix(Normalize(backbone.mean, backbone.std), *modules[:k],
                              taps=None if taps is None else self.cache_reads(k, taps)[:-1])
        layers = modules[k:]
        if strategy.kind == "surgical":  # group i trains; the groups above it pass gradients but do not change
            layers = [layers[0], *(FrozenInPlace(m) for m in layers[1:])]
        suffix = TrainableSuffix(layers, head, taps=None if taps is None else [t - k for t in taps if t >= k])
        return TransferNet(prefix, suffix, num_frozen=k, weights_module=self.saved_weights(backbone, groups, head))

    # -- training and scoring --------------------------------------------------------------------------------
    @abstractmethod
    def loss(self, outputs, targets) -> torch.Tensor: ...

    @abstractmethod
    def predict(self, outputs) -> Any:
        """The network's outputs for a batch as the metrics read them (probabilities, a mask, boxes, …), on the CPU."""

    def own_size_targets(self, data, indices: np.ndarray) -> Sequence | None:
        """The targets of ``data.samples[indices]`` at each image's own size, when the test metrics score there rather
        than at the input size (segmentation: the masks a delivered model writes are the image's size, so its test
        Dice is measured on them). ``None`` (the default): the test metrics read the targets at the input size."""
        return None

    def predict_at(self, outputs, sizes: Sequence[tuple[int, int]]) -> Any:
        """:meth:`predict` for images whose own sizes ``(h, w)`` are ``sizes`` (one per output), for the targets of
        :meth:`own_size_targets`. By default the predictions at the input size."""
        return self.predict(outputs)

    @property
    @abstractmethod
    def metric(self) -> Metric:
        """The study metric."""

    @abstractmethod
    def case_columns(self, predictions, targets) -> dict[str, np.ndarray]:
        """What the study stores per test case to recompute :attr:`metric` on resampled cases: named columns, one
        entry per case (probabilities and targets, a per-case score, …)."""

    def score(self, predictions, targets) -> float:
        """The metric on validation predictions: :attr:`metric`'s statistic on all the cases."""
        cases = self.case_columns(predictions, targets)
        n = len(next(iter(cases.values()))) if cases else 0
        return float(self.metric.statistic(cases, np.arange(n)[None])[0]) if n else float("nan")

    @abstractmethod
    def evaluate(self, predictions, targets, *, seed: int = 0) -> dict[str, dict[str, float]]:
        """Test metrics with bootstrap intervals: ``{metric: {"value", "ci_low", "ci_high"}}``, the study metric
        among them."""

    def predictions_csv(self, indices: np.ndarray, predictions, targets, *, uncalibrated=None) -> str:
        """The test predictions of a run folder, one row per test case: by default the stored case columns.
        ``uncalibrated``: the predictions before :meth:`calibrate`, where the task calibrates."""
        cases = self.case_columns(predictions, targets)
        buf = io.StringIO()
        w = csv.writer(buf)
        header, columns = ["sample"], []
        for name, col in cases.items():
            col = np.asarray(col)
            col = col.reshape(len(col), -1)
            header += [name] if col.shape[1] == 1 else [f"{name}_{j}" for j in range(col.shape[1])]
            columns.append(col)
        w.writerow(header)
        for i, row in enumerate(np.asarray(indices)):
            w.writerow([int(row), *[_cell(v) for col in columns for v in col[i]]])
        return buf.getvalue()

    def legacy_case_columns(self, targets: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
        """Per-case columns from a study stored before per-case columns existed (a ``targets`` and a ``probs``
        array per trial)."""
        return {"targets": targets, "probs": probs}

    # -- calibration -----------------------------------------------------------------------------------------
    @property
    def calibrates(self) -> bool:
        """Whether the task fits a calibration of its predictions on the validation split (:meth:`calibrate`)."""
        return False

    def calibrate(self, outputs, targets) -> dict:
        """Fit the calibration on the validation split's network outputs (``Trainer.predict(..., raw=True)``) and
        keep it: :meth:`predict` applies it from then on and :meth:`config` stores it. Returns what a run reports
        of the fit (JSON-ready)."""
        return {}

    def calibration_check(self, outputs, targets):
        """The fitted calibration judged on the test split's network outputs: a
        :class:`~medtransfer.training.calibration.CalibrationCheck` (figures before and after), or ``None``."""
        return None

    # -- delivery --------------------------------------------------------------------------------------------
    def prediction_writer(self, saved, out_dir, *, heatmaps: bool = False) -> PredictionWriter:
        """The writer of this task's predictions for new images (``medtransfer predict``) of the saved model
        ``saved`` (a :class:`~medtransfer.model.saved.SavedModel`) into ``out_dir``."""
        raise ConfigError(f"predicting new images is not available for the {self.name} task")

    def delivered_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """What a delivered (exported) model returns for a batch of network outputs, traceable: by default
        :meth:`predict` of them."""
        return self.predict(outputs)

    # -- the rest --------------------------------------------------------------------------------------------
    def report(self) -> ReportSection:
        return self.Report(self)

    def config(self) -> dict:
        """What is needed to rebuild this task (stored with a saved model and a study)."""
        return {"task": self.name}


def _type_fits(value, default) -> bool:
    """Whether ``value`` has the type of an option's ``default`` (an int does for a float; no default: anything)."""
    if default is None or default is dataclasses.MISSING:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _cell(v) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.6f}" if isinstance(v, float) else str(v)
