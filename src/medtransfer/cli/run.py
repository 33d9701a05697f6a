"""``medtransfer train`` and ``medtransfer evaluate``: one run folder, made and scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medtransfer.cli.flags import read_flags, takes_flags
from medtransfer.config import RunConfig

DataOpt = Annotated[str, typer.Option("--data", "-d", help="MedMNIST name or .npz, CSV manifest, image folder, "
                                      "image + mask pairs (folder images/ + masks/, NIfTI images/ + labels/, or a "
                                      "CSV image,mask), or any layout a registered task reads.")]


@takes_flags("train")
def train(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder (when the new run has finished).")] = False,
    **flags,
) -> None:
    """Fine-tune (or train from scratch) one network and write its run folder."""
    from medtransfer.console import metrics_table, progress_bars, stdout
    from medtransfer.run import train as run_train

    given = read_flags("train", flags)
    quiet, track, experiment = given.pop("quiet"), given.pop("track", None), given.pop("experiment", None)
    config = RunConfig.with_recipe(data=data, **given)
    with progress_bars(not quiet) as progress:
        result = run_train(config, out, progress=progress, overwrite=overwrite, track=track, experiment=experiment)
    m = result.metrics
    stdout.print(metrics_table(m["test"], f"{m['data']['name']} · {m['strategy']} · seed {config.seed} · test"))
    stdout.print(f"best epoch {m['best_epoch']} of {m['epochs_run']} ({m['stopped']}), {m['total_seconds']:.0f} s; "
                 f"run folder: {out}")


@takes_flags("evaluate")
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by 'medtransfer train'.")],
    data: DataOpt,
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "test",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    **flags,
) -> None:
    """Score a saved model on any source."""
    from medtransfer.console import metrics_table, stdout
    from medtransfer.run import evaluate as run_evaluate

    given = read_flags("evaluate", flags)
    result = run_evaluate(run, data, split=split, device=given["device"], source_options=given.get("source_options"))
    if json_out:
        stdout.print_json(json.dumps(result))
    else:
        stdout.print(metrics_table(result["metrics"], f"{run} on {data} · {split} ({result['n']} images)"))
