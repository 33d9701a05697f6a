"""Terminal output shared by the CLI and long-running API calls: progress bars and result tables (rich)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)
stdout = Console()


@contextmanager
def progress_bars(enabled: bool = True):
    """A rich Progress for epoch (and trial) bars, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as p:
        yield p


def metrics_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Metric | value | 95 % CI."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95 % CI", justify="right")
    for name, m in metrics.items():
        table.add_row(name.replace("_", " "), f"{m['value']:.3f}", f"{m['ci_low']:.3f} – {m['ci_high']:.3f}")
    return table
