"""What a task adds to a study's report: prose, set-up lines and figures. Every method has a default, so a new task
needs none of them."""

from __future__ import annotations

from typing import Any

from medtransfer.tasks.metric import Metric


class ReportSection:
    """``facts`` is the report's :class:`~medtransfer.report.facts.StudyFacts`; figures are
    :class:`~medtransfer.plots.Figure` objects written into ``out_dir``."""

    #: what the new, always-trained part of the network is called in prose
    head = "head"

    def __init__(self, name: str, metric: Metric, class_names: list[str] | tuple[str, ...] = ()):
        self.name, self.metric, self.class_names = name, metric, list(class_names)

    def describe_task(self, card: dict) -> str:
        """The task in a few words, for the dataset card."""
        return self.name

    def split_method(self) -> str:
        """How a seeded split is made, in words."""
        return "grouped by patient where known"

    def metrics_note(self, facts) -> str:
        """How the other test metrics were computed."""
        others = ", ".join(self.metric.heading(n) for n in self.metric.others)
        return f"{others} are computed on the test split as the task defines them." if others else ""

    def setup_items(self, config: dict) -> list[tuple[str, str]]:
        """Task-specific lines of the report's set-up list."""
        return []

    def figures(self, facts, out_dir) -> list:
        """Figures drawn from the stored per-case predictions (no model needed)."""
        return []

    def model_figures(self, facts, models: list[tuple[str, Any]], examples: dict, out_dir, *, models_note: str) -> list:
        """Figures that run saved models (``[(strategy, SavedModel), …]``) on the example test images the study
        stored (:meth:`~medtransfer.tasks.inputs.TaskInputs.examples`)."""
        return []

    def model_figure_names(self) -> list[tuple[str, str, str]]:
        """``(name, title, what is drawn per model)`` of the figures :meth:`model_figures` draws, for the notes
        shown in their place when no model is there."""
        return []
