"""The one step of the report that runs models: the saved models of the recommended strategy and its reference, on
the example test images the study stored when it read the data. The data source is not read again; what is drawn
is the task's (:meth:`~medtransfer.tasks.ReportSection.model_figures`)."""

from __future__ import annotations

from pathlib import Path

from medtransfer.plots import Figure, percent
from medtransfer.report.facts import StudyFacts
from medtransfer.model.saved import load_model
from medtransfer.study.examples import EXAMPLES, decode_examples
from medtransfer.study.folder import MODELS, strategy_folder_name


def draw_model_figures(facts: StudyFacts, out_dir: Path) -> list[Figure]:
    """The task's model figures, or each figure with a note saying why it could not be drawn."""
    wanted = facts.section.model_figure_names()
    if not wanted:
        return []
    drawn = " and ".join(d for _n, _t, d in wanted)
    notes, models, trained_on = [], [], []
    for strategy in [s for s in facts.pair() if s]:
        folder = facts.saved_model(strategy)
        if folder is None:
            where = f"{MODELS}/{strategy_folder_name(strategy)}/"
            notes.append(f"The saved model of {strategy} ({where}) is missing, so its "
                         f"{drawn} are left out.")
            continue
        saved = load_model(folder)
        models.append((strategy, saved))
        trained_on.append(_trained_on(strategy, saved.spec.get("trial")))
    if not models:
        return [Figure(name, title, note=" ".join(notes) or "No model to show.") for name, title, _ in wanted]
    blob = facts.store.blob(EXAMPLES)
    if blob is None:
        return [Figure(name, title, note=f"This study stored no example test images (it was made by an older version "
                                         f"of medtransfer), so no {d} were drawn; run the study again into a new "
                                         f"folder to get them.") for name, title, d in wanted]
    models_note = (f"Models: {'; '.join(trained_on)} (each strategy's trial with the best validation "
                   f"{facts.metric.label}). ")
    figures = facts.section.model_figures(facts, models, decode_examples(blob), out_dir, models_note=models_note)
    for f in figures:
        f.note = " ".join(n for n in (f.note, *notes) if n)
    return figures


def _trained_on(strategy: str, tid: str | None) -> str:
    """'tune:2 trained on 100 % of the training data, seed 0' from a trial id 'tune:2|1|0'."""
    if not tid or tid.count("|") != 2:
        return strategy
    _s, fraction, seed = tid.split("|")
    return f"{strategy} trained on {percent(float(fraction))} of the training data (seed {seed})"
