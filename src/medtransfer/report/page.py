"""A study's report: one self-contained HTML page that answers the study's three questions, with its figures.

The figures that need only the stored results are drawn here; the ones that run models go through
:mod:`medtransfer.report.model_figures`; the prose is :mod:`medtransfer.report.answers`, the HTML
:mod:`medtransfer.report.html`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from medtransfer.files import atomic_write
from medtransfer.plots import (
    Figure,
    plot_metric_vs_depth,
    plot_metric_vs_fraction,
    plot_validation_curves,
)
from medtransfer.report.facts import StudyFacts
from medtransfer.report.failed_page import nothing_finished, render_failed
from medtransfer.report.html import render
from medtransfer.report.model_figures import draw_model_figures
from medtransfer.strategies import by_depth
from medtransfer.study.folder import StudyFolder


def build_figures(facts: StudyFacts, out_dir: Path) -> list[Figure]:
    """Draw every figure into ``out_dir``; a figure that cannot be drawn comes back with a note instead."""
    s = facts.summary
    if s.table.empty:
        return [Figure("results", "Results", note="No trial has finished yet, so there is nothing to plot.")]
    top = facts.fractions[0]
    untrained = [d for d in s.skipped() if d not in facts.order]  # depths a search trained to the end at no size
    return [
        *_drawn("depth", lambda: [plot_metric_vs_depth(
            s.table, s.metric, by_depth([*facts.order, *untrained]), s.recommended, s.recommended_fraction, out_dir,
            head=facts.head, skipped=untrained, rule="one-standard-error rule" if s.rule == "one-se" else "best mean",
            halving=(s.search or {}).get("kind") == "halving")]),
        *_drawn("fraction", lambda: [plot_metric_vs_fraction(s.table, s.metric, facts.order, s.recommended, out_dir)]),
        *_drawn("validation_curves", lambda: [plot_validation_curves(facts.curves, facts.trials, s.metric, facts.order,
                                                                     s.recommended, top, out_dir)]),
        *_drawn(f"{facts.task.name}", lambda: facts.section.figures(facts, out_dir)),
        *_drawn("models", lambda: draw_model_figures(facts, out_dir)),
        *_drawn("calibration", lambda: calibration_figure(facts, out_dir)),
    ]


def calibration_figure(facts: StudyFacts, out_dir: Path) -> list[Figure]:
    """The recommended model's reliability diagram on test, before and after its calibration (drawn when the study
    kept the model; tasks without calibrated probabilities have none)."""
    rec = facts.summary.recommended
    if rec is None or not (facts.model_spec(rec) or {}).get("calibration"):
        return []
    folder = facts.study_folder.strategy_model(rec)
    png, svg = folder / "reliability.png", folder / "reliability.svg"
    if not png.is_file():
        return [Figure("calibration", f"Calibration of the recommended model ({rec})",
                       note=f"{png.relative_to(facts.folder)} is missing; the model was kept before reliability "
                            f"diagrams were drawn.")]
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, out_dir / "calibration.png")
    if svg.is_file():
        shutil.copyfile(svg, out_dir / "calibration.svg")
    return [Figure("calibration", f"Calibration of the recommended model ({rec})", png=out_dir / "calibration.png",
                   svg=out_dir / "calibration.svg" if svg.is_file() else None, caption=(
                       "Observed accuracy against predicted confidence on the test split, before and after the "
                       "temperature fitted on validation, with the expected calibration error (ECE) of each; bars: "
                       "the share of test cases per confidence bin. The probabilities predict and the ONNX export "
                       "give are the calibrated ones."))]


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
    folder = StudyFolder(Path(study_dir))
    facts = StudyFacts.read(folder.path)
    if nothing_finished(facts):  # which trials failed and why, not answers drawn from no result
        page = render_failed(facts, show_filenames=show_filenames)
    else:
        page = render(facts, build_figures(facts, folder.figures), show_filenames=show_filenames)
    atomic_write(folder.report, page)
    return folder.report
