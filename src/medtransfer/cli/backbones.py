"""``medtransfer backbones show`` and ``medtransfer backbones list``."""

from __future__ import annotations

from typing import Annotated

import typer


def backbones_show(name: Annotated[str, typer.Argument(help="A timm model name.")] = "tf_efficientnet_lite0") -> None:
    """The layer groups of NAME, shallow to deep, with parameter counts and the valid tune:K."""
    from rich.table import Table

    from medtransfer.backbones import describe_groups
    from medtransfer.console import stdout

    rows = describe_groups(name)
    n = len(rows) - 1
    table = Table(title=f"{name}: {n} layer groups")
    for col, justify in (("#", "right"), ("group", "left"), ("parameters", "right"), ("trained by", "left")):
        table.add_column(col, justify=justify)
    for i, (group, count) in enumerate(rows):
        if i == n:
            trained = "every strategy"
        else:
            k = n - i  # tune:k is the shallowest strategy that trains this group
            trained = "full" if k == n else f"tune:{k} … tune:{n - 1}, full"
        table.add_row(str(i + 1) if i < n else "", group, f"{count:,}", trained)
    stdout.print(table)
    stdout.print(f"strategies: scratch, linear, tune:K with 1 ≤ K ≤ {n - 1}, full; opt-in: surgical:i with 1 ≤ i ≤ {n}, lp-ft")


def backbones_list(pattern: Annotated[str, typer.Argument(help="A glob, e.g. '*efficientnet*'.")] = "*") -> None:
    """timm models matching PATTERN; those with offline ImageNet weights are marked."""
    from medtransfer.backbones import BUNDLED, available_backbones
    from medtransfer.console import stdout, styled

    for name in available_backbones(pattern):
        stdout.print(styled(f"{name}  ", ("(offline ImageNet weights)", "green")) if name in BUNDLED else name)
