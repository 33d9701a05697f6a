"""A study's report: one self-contained HTML page that answers the study's three questions, with its figures.

The figures that need only the stored results are drawn here; the ones that run models go through
:mod:`medtransfer.report.model_figures`; the prose is :mod:`medtransfer.report.answers`, the HTML
:mod:`medtransfer.report.html`.
"""

from __future__ import annotations

from pathlib import Path

from medtransfer.files import atomic_write
from medtransfer.plots import (
    Figure,
    plot_metric_vs_depth,
    plot_metric_vs_fraction,
    plot_validation_curves,
)
from medtransfer.report.facts import StudyFacts
from medtransfer.report.html import FIGURES_DIR, render
from medtransfer.report.model_figures import draw_model_figures

REPORT_NAME = "report.html"


def build_figures(facts: StudyFacts, out_dir: Path) -> list[Figure]:
    """Draw every figure into ``out_dir``; a figure that cannot be drawn comes back with a note instead."""
    s = facts.summary
    if s.table.empty:
        return [Figure("results", "Results", note="No trial has finished yet, so there is nothing to plot.")]
    top = facts.fractions[0]
    return [
        *_drawn("depth", lambda: [plot_metric_vs_depth(s.table, s.metric, facts.order, s.recommended,
                                                       s.recommended_fraction, out_dir, head=facts.head)]),
        *_drawn("fraction", lambda: [plot_metric_vs_fraction(s.table, s.metric, facts.order, s.recommended, out_dir)]),
        *_drawn("validation_curves", lambda: [plot_validation_curves(facts.curves, facts.trials, s.metric, facts.order,
                                                                     s.recommended, top, out_dir)]),
        *_drawn(f"{facts.task.name}", lambda: facts.section.figures(facts, out_dir)),
        *_drawn("models", lambda: draw_model_figures(facts, out_dir)),
    ]


def _drawn(name: str, draw) -> list[Figure]:
    """``draw()``, or a figure that says why it could not be drawn: the report reports what it can."""
    try:
        return draw()
    except Exception as e:  # a damaged or inconsistent study folder must not stop the page
        return [Figure(name, f"Figure '{name}'", note=f"This figure could not be drawn ({type(e).__name__}: {e}).")]


def write_report(study_dir: str | Path, *, show_filenames: bool = False) -> Path:
    """Write ``study_dir/report.html`` (and the figures as PNG and SVG in ``study_dir/figures/``); return its path.

    ``show_filenames=True`` lists the file name of each image shown in the model figures; by default no file name
    appears on the page.
    """
    folder = Path(study_dir)
    facts = StudyFacts.read(folder)
    figures = build_figures(facts, folder / FIGURES_DIR)
    path = folder / REPORT_NAME
    atomic_write(path, render(facts, figures, show_filenames=show_filenames))
    return path
