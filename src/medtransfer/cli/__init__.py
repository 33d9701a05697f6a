"""The ``medtransfer`` command: a thin layer that turns flags into API calls and prints the results. One module per
group of commands; their shared flags come from the table of settings (:mod:`medtransfer.cli.flags`)."""

from __future__ import annotations

import sys

import typer

from medtransfer.cli.backbones import backbones_list, backbones_show
from medtransfer.cli.delivery import export, predict
from medtransfer.cli.run import evaluate, train
from medtransfer.cli.study import demo, report, study
from medtransfer.errors import MedTransferError

__all__ = ["app", "main"]

app = typer.Typer(
    help="Full training or fine-tuning? Layer-wise transfer-learning studies for small medical image datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for command in (train, study, demo, report, evaluate, predict, export):
    app.command()(command)
backbones_app = typer.Typer(help="List backbones and show their layer groups.", no_args_is_help=True)
backbones_app.command("show")(backbones_show)
backbones_app.command("list")(backbones_list)
app.add_typer(backbones_app, name="backbones")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    from medtransfer.console import console, styled

    try:
        app()
    except MedTransferError as e:
        from medtransfer.study import StudyInterrupted

        console.print(styled(("error:", "bold red"), f" {e}"), highlight=False)
        sys.exit(130 if isinstance(e, StudyInterrupted) else 2)
    except KeyboardInterrupt:
        console.print("interrupted.")
        sys.exit(130)
    except OSError as e:  # disk full, permissions: one line, not a traceback
        console.print(styled(("error:", "bold red"), f" {e.filename or ''}: {e.strerror or e}"), highlight=False)
        sys.exit(2)
