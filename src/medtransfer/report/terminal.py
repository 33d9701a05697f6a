"""The study's outcome in the terminal: the table of test scores by depth and training-set size, the recommendation
and the comparisons, as ``medtransfer study`` prints them after the last trial."""

from __future__ import annotations

from rich.table import Table

from medtransfer.console import stdout, styled
from medtransfer.strategies import by_depth
from medtransfer.study.halving import describe_halving
from medtransfer.study.recommend import rule_phrase
from medtransfer.study.search import describe_chains


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
