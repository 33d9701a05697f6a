"""The report of a study in which no trial finished: which trials failed and why, instead of empty answers.

With no finished trial there is nothing to compare, recommend or plot; a page of "0 strategies" and "this study did
not train from scratch" would misstate what happened. This page says that every recorded trial failed, lists each
with its reason (paths hidden unless asked for, as on the full report), and keeps the dataset and set-up sections.
"""

from __future__ import annotations

from pathlib import Path

from medtransfer.plots import percent
from medtransfer.report.answers import redact_paths
from medtransfer.report.facts import StudyFacts
from medtransfer.report.html import section_dataset, section_setup
from medtransfer.report.markup import escaped, html_page, html_table
from medtransfer.study.folder import FAILURES


def nothing_finished(facts: StudyFacts) -> bool:
    """Whether the study recorded failed trials and no finished one."""
    return facts.summary.table.empty and len(facts.summary.failed) > 0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _planned(facts: StudyFacts) -> str:
    """'1 strategy × 1 training-set size × 1 seed planned': from the configuration, as nothing has results (the
    default strategies, every depth, are counted from the trials that ran)."""
    c = facts.config
    strategies = c.get("strategies") or sorted(set(facts.trials.strategy))
    return (f"{_count(len(strategies), 'strategy', 'strategies')} × "
            f"{_count(len(c.get('fractions', [])), 'training-set size', 'training-set sizes')} × "
            f"{_count(len(c.get('seeds', [])), 'seed', 'seeds')} planned")


def section_no_trial_finished(facts: StudyFacts, show_filenames: bool) -> str:
    failed = facts.summary.failed
    rows = []
    for r in failed.itertuples():
        error = str(r.error or "no reason recorded")
        shown = error if show_filenames else redact_paths(error)
        rows.append([escaped(r.strategy), escaped(percent(r.fraction)), escaped(r.seed), escaped(shown)])
    hidden = "" if show_filenames else " Paths in the reasons are hidden (report --show-filenames shows them)."
    log = (f" {FAILURES} in the study folder holds the traceback of each trial that raised an error."
           if facts.study_folder.failures_log.is_file() else "")
    n = len(failed)
    return ('<section id="failed"><h2>No trial finished</h2><div class="box">'
            f'<p class="big">No trial finished: {n} trial(s) failed</p>'
            f'<p>{"It is the" if n == 1 else "They are every"} trial the study recorded, so there is no '
            "recommendation yet, no model, and nothing to plot. Each trial and why it failed:</p>"
            + html_table(["strategy", "fraction", "seed", "reason"], rows, text_columns=(3,))
            + f'<p class="muted">{escaped(hidden + log)}</p>'
            "<p>Fix the cause given above (for a loss that became non-finite, a lower learning rate), then run the "
            "study again with --new-folder: this folder keeps its failed trials, and they are not run again here.</p>"
            "</div></section>")


def render_failed(facts: StudyFacts, *, show_filenames: bool) -> str:
    """The whole page of a study whose every recorded trial failed."""
    name = facts.data.get("name") or Path(str(facts.config.get("data", "study"))).name
    modality = facts.data.get("modality")
    subtitle = f"{modality + ' · ' if modality else ''}{facts.config.get('backbone', '')} · {_planned(facts)}"
    body = "".join([
        f"<header><h1>Full training or fine-tuning? {escaped(name)}</h1>"
        f"<p class='subtitle'>{escaped(subtitle)}</p></header>",
        section_no_trial_finished(facts, show_filenames),
        section_dataset(facts),
        section_setup(facts),
    ])
    return html_page(f"Transfer-learning study: {name} (no trial finished)", body)
