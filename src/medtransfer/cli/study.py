"""``medtransfer study``, ``medtransfer demo`` and ``medtransfer report``: a study run, resumed and reported."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from medtransfer.cli.flags import read_flags, takes_flags
from medtransfer.errors import ConfigError
from medtransfer.study.config import StudyConfig


@takes_flags("study")
def study(
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="MedMNIST name or .npz, CSV manifest, image "
                                                "folder, or image + mask pairs.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder (rerun the same command to resume).")] = Path("studies/study"),
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A study.yaml; flags override it.")] = None,
    new_folder: Annotated[bool, typer.Option(help="If OUT holds another configuration, write to OUT-2 instead.")] = False,
    **flags,
) -> None:
    """Scratch vs. every fine-tuning depth × training-set sizes × seeds, with a recommended depth. Resumable."""
    given = read_flags("study", flags)
    how = {k: given.pop(k, None) for k in ("device", "quiet", "cache_memory", "executor", "workers",
                                           "threads_per_worker", "ray_address", "gpus_per_trial")}
    if config is not None:
        settings = StudyConfig.from_yaml(config, data=data, **given)
    elif data is None:
        raise ConfigError("give --data (or --config with a 'data' entry)")
    else:
        settings = StudyConfig.with_recipe(data=data, **given)
    run_study(settings, out, new_folder=new_folder, **how)


@takes_flags("demo")
def demo(
    data: Annotated[str, typer.Option("--data", "-d", help="BreastMNIST by name (medmnist cache) or a path.")] = "breastmnist",
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder.")] = Path("studies/demo"),
    **flags,
) -> None:
    """The layer-wise study on BreastMNIST: every strategy, 2 training-set sizes, 1 seed (≈8–12 minutes on a 2-core CPU)."""
    from medtransfer.study.demo import demo_config

    given = read_flags("demo", flags)
    config = dataclasses.replace(demo_config(data), track=given.pop("track", None),
                                 experiment=given.pop("experiment", None))
    run_study(config, out, new_folder=True, **given)


def report(
    study_dir: Annotated[Path, typer.Argument(help="A study folder written by 'medtransfer study'.")],
    show_filenames: Annotated[bool, typer.Option(help="Name the image files shown in the heat maps.")] = False,
) -> None:
    """Write STUDY_DIR/report.html: the answers, the recommendation, tables and figures, in one self-contained page."""
    from medtransfer.report.outcome import report_study

    report_study(study_dir, show_filenames=show_filenames)  # exits 2 when no trial of the study finished


def run_study(config: StudyConfig, out: Path, *, device: str, new_folder: bool, quiet: bool,
              cache_memory: str | None = None, executor: str = "auto", threads_per_worker: int | None = None,
              **executor_options) -> None:
    """Plan the study, say what it will run and where, run it, and end it (its summary, or exit 2)."""
    from medtransfer.cache import parse_memory
    from medtransfer.console import line_printer, progress_bars, stdout
    from medtransfer.study import Study
    from medtransfer.study.executors import make_executor
    from medtransfer.report.outcome import end_study
    from medtransfer.training import resolve_device

    runs = make_executor(executor, device=str(resolve_device(device)), threads=threads_per_worker,
                         **executor_options)
    study = Study(config, out, device=device, new_folder=new_folder, cache_memory=parse_memory(cache_memory),
                  executor=runs)
    stdout.print(f"Study in {study.folder}: {_plan_line(study, config)}. Runs on: {runs.where(study.device)}.")
    with progress_bars(not quiet, epoch_lines=False) as progress:  # without a terminal: a plain line per trial
        summary = study.run(progress=progress, log=line_printer(progress))
    end_study(summary, study.folder, on_report=study.tracking.report)  # exits 2 when no trial finished


def _plan_line(study, config: StudyConfig) -> str:
    """What the study will run, in words: its trials, those already done, and its search."""
    plan, pending = study.plan(), study.pending()
    grid = (f"{len(study.strategies())} strategies × {len(config.fractions)} training fractions × "
            f"{len(config.seeds)} seeds")
    if config.search == "grid":
        return f"{len(plan)} trials ({grid}); {len(plan) - len(pending)} already done"
    if config.search == "halving":
        done = len(study.store.finished_ids()) if study.store.exists() else 0
        return (f"successive halving over {len(plan)} trials ({grid}; the best 1/{config.halving_rate} of the "
                f"strategies at each rung go on); {done} already done, {len(pending)} in the next round")
    return (f"layer-wise search over at most {len(study.strategies()) * len(config.fractions) * len(config.seeds)} "
            f"trials ({grid}); {len(plan) - len(pending)} done, {len(pending)} in the next round")
