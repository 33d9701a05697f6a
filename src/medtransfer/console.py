"""Terminal output shared by the CLI and long-running API calls: progress bars and result tables (rich).

Nearly everything printed holds a user's string (a path, a file or class name, an option value, an error message),
so both consoles print text as it is: rich markup and ``:emoji:`` codes are off, a ``[red]`` or ``[/x]`` in a file
name prints as itself instead of vanishing or raising ``MarkupError``, and plain lines are not wrapped (a path stays
on one line, as the user can copy it). Styles are given as :class:`rich.text.Text` spans (:func:`styled`), never as
markup around an interpolated string; table cells and titles are plain text for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from medtransfer.strategies import by_depth

console = Console(stderr=True, markup=False, emoji=False, soft_wrap=True)
stdout = Console(markup=False, emoji=False, soft_wrap=True)

#: the marks that a study's log lines start with (study/trial_lines.py, executors), and the colour each is shown in
MARK_STYLES = {"✓": "green", "✗": "red", "⏸": "cyan", "✂": "yellow", "↻": "yellow"}


def styled(*parts: str | tuple[str, str]) -> Text:
    """Plain text with styled spans: ``styled(("error:", "bold red"), " ", message)``; nothing is read as markup."""
    return Text.assemble(*parts)


def log_line(line: str) -> Text:
    """A log line (plain text, e.g. ``"✓ linear · 100% · seed 0: …"``) with its leading mark coloured."""
    text = Text(line)
    if line[:1] in MARK_STYLES:
        text.stylize(MARK_STYLES[line[0]], 0, 1)
    return text


def logger(target: Console) -> Callable[[str], None]:
    """The ``log`` callable that long-running calls (a study) print their lines with."""
    return lambda line: target.print(log_line(str(line)), highlight=False)


class PlainProgress:
    """Progress without a terminal (output to a file or a pipe), where rich's live bars would show nothing until the
    command ends: one plain line, flushed, for each step's summary, i.e. each update that sets a description without
    advancing (the trainer's line at the end of an epoch). The rest of the Progress interface does nothing."""

    def __init__(self, target: Console):
        self.console, self._tasks = target, 0

    def add_task(self, description: str, total=None, **fields) -> int:
        self._tasks += 1
        return self._tasks

    def update(self, task: int, *, advance=None, description: str | None = None, **fields) -> None:
        if description is not None and advance is None:
            self.console.print(description, markup=False, highlight=False, soft_wrap=True)

    def advance(self, task: int, advance: float = 1) -> None:
        pass

    def remove_task(self, task: int) -> None:
        pass


@contextmanager
def progress_bars(enabled: bool = True, *, epoch_lines: bool = True):
    """A rich Progress for epoch (and trial) bars on a terminal; without one, a :class:`PlainProgress` that prints
    a line per epoch (``None`` with ``epoch_lines=False``: a study prints a line per trial instead); ``None`` when
    disabled."""
    if not enabled:
        yield None
        return
    if not console.is_terminal:
        yield PlainProgress(console) if epoch_lines else None
        return
    with Progress(
        TextColumn("{task.description}", markup=False),  # names trials and files
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as p:
        yield p


def line_printer(progress):
    """How a long command prints a line: above the bars on a terminal, else one unwrapped line on stdout (a line
    per trial, readable in a log file)."""
    return logger(progress.console if isinstance(progress, Progress) else stdout)


def metrics_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Metric | value | 95 % CI. Only a name's first underscore becomes a space: what follows it in ``ap50_<class>``
    or ``dice_<class>`` is a class name, shown as it is."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95 % CI", justify="right")
    for name, m in metrics.items():
        table.add_row(name.replace("_", " ", 1), f"{m['value']:.3f}", f"{m['ci_low']:.3f} – {m['ci_high']:.3f}")
    return table


def study_table(summary) -> Table:
    """Strategies (rows, shallow to deep) × training fractions (columns): mean test AUC or Dice (95 % CI)."""
    m, label = summary.metric.name, summary.metric.label
    table = Table(title=f"Test {label} by fine-tuning depth and training-set size (mean over seeds, 95 % CI)")
    t = summary.table
    fractions = sorted(t.fraction.unique(), reverse=True)
    table.add_column("strategy")
    for f in fractions:
        table.add_column(f"{f:.0%} of train", justify="right")
    table.add_column(f"val {label} @ top", justify="right")
    for strategy in by_depth(t.strategy.unique()):
        cells = []
        for f in fractions:
            row = t[(t.strategy == strategy) & (t.fraction == f)]
            cells.append("–" if row.empty else f"{row[f'test_{m}'].iloc[0]:.3f} "
                         f"({row[f'test_{m}_low'].iloc[0]:.2f}–{row[f'test_{m}_high'].iloc[0]:.2f})")
        top = t[(t.strategy == strategy) & (t.fraction == fractions[0])]
        mark = " ★" if strategy == summary.recommended else ""
        table.add_row(f"{strategy}{mark}", *cells, "–" if top.empty else f"{top[f'val_{m}'].iloc[0]:.3f}")
    return table


def print_study(summary, folder, saved: list[str]) -> None:
    """The study's table, recommendation and failures, then ``saved``: the names of the files it left in ``folder``."""
    if summary.table.empty:  # every recorded trial failed (or none ran): no table to show
        stdout.print(styled(("No trial finished.", "red")))
    else:
        stdout.print(study_table(summary))
    if summary.recommended:
        from medtransfer.study.recommend import rule_phrase
        from medtransfer.study.halving import describe_halving
        from medtransfer.study.search import describe_chains

        stdout.print(styled((f"Recommended: {summary.recommended}", "bold"), f" (the {rule_phrase(summary.rule)} "
                            f"{summary.metric_label} at {summary.recommended_fraction:.0%} of the training data; "
                            "the test split was not used to choose)."))
        level = [s for s in summary.level if s != summary.recommended]
        if level:
            stdout.print(f"  Level with the best on validation (within one standard error): {', '.join(level)}.")
        chains = (summary.search or {}).get("chains", [])
        if chains:
            stdout.print(f"  Layer-wise search: {describe_chains(chains)}.")
        if (summary.search or {}).get("kind") == "halving":
            stdout.print(f"  Successive halving: {describe_halving(summary.search)}.")
    for c in summary.comparisons:
        stdout.print("  • " + c.sentence(summary.metric_label))
    if summary.scratch_vs_best:
        stdout.print("Fine-tuning against scratch, at each training-set size:")
        for c in summary.scratch_vs_best:
            stdout.print("  • " + c.sentence(summary.metric_label))
    if len(summary.failed):
        stdout.print(styled((f"{len(summary.failed)} trial(s) failed:", "red")))
        for r in summary.failed.itertuples():
            stdout.print(f"  • {r.strategy} · {r.fraction:.0%} · seed {r.seed}: {r.error}", markup=False)
    stdout.print(f"Saved in {folder}: {', '.join(saved)}", markup=False)
