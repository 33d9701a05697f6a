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
