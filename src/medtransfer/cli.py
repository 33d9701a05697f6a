"""The ``medtransfer`` command: a thin layer that turns flags into API calls and prints the results."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from medtransfer.config import RunConfig
from medtransfer.errors import ConfigError, MedTransferError
from medtransfer.study.config import StudyConfig
from medtransfer.training.config import MAX_EPOCHS, MIN_EPOCHS, TrainConfig

app = typer.Typer(
    help="Full training or fine-tuning? Layer-wise transfer-learning studies for small medical image datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
backbones_app = typer.Typer(help="List backbones and show their layer groups.", no_args_is_help=True)
app.add_typer(backbones_app, name="backbones")



def _default(config: type, name: str):
    """A setting's default, read from its config class (the command line never restates it)."""
    f = config.__dataclass_fields__[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


_BUDGET = (f"from the data, {TrainConfig.budget_steps} optimisation steps in {MIN_EPOCHS} to {MAX_EPOCHS} epochs "
           "(30 on BreastMNIST)")


def _recipes(name: str, train: bool = False) -> str:
    """``'; detection: 384'``: the tasks whose recipe sets ``name`` otherwise (:attr:`TaskInputs.recipe`)."""
    from medtransfer.tasks import get_task, task_names

    notes = []
    for t in task_names():
        recipe = get_task(t).inputs.recipe.get("train", {}) if train else get_task(t).inputs.recipe
        if name in recipe:
            notes.append(f"{t}: {recipe[name]}")
    return "".join(f"; {n}" for n in notes)


def _tasks() -> str:
    from medtransfer.tasks import task_names

    return ", ".join(task_names())


DataOpt = Annotated[str, typer.Option("--data", "-d", help="MedMNIST name or .npz, CSV manifest, image folder, "
                                      "image + mask pairs (folder images/ + masks/, NIfTI images/ + labels/, or a "
                                      "CSV image,mask), or any layout a registered task reads.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(
    help="Training steps in auto (mixed precision on CUDA: bf16, or fp16 with a gradient scaler; fp32 on a CPU), "
         "fp32, bf16 (on a CPU with BF16 units it speeds up dense convolutions, slows depthwise ones) or fp16 (CUDA).")]
ExecutorOpt = Annotated[str, typer.Option(
    help="Where trials run: auto (processes on a CPU with 2+ cores, else local), local (this process, one after "
         "another), processes (--workers on this machine) or ray (a Ray cluster at --ray-address, or a local Ray).")]
WorkersOpt = Annotated[Optional[int], typer.Option(help="Worker processes (processes executor; default: cores ÷ threads).")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    help="Torch threads per trial (processes and ray: default 1; local: torch's default).")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    help="An existing Ray cluster, e.g. ray://head:10001 or auto (ray executor; default: start a local Ray).")]
GpusOpt = Annotated[Optional[float], typer.Option(
    help="GPUs per trial on Ray, e.g. 0.5 to run two trials on each GPU (default: 1 when the cluster has GPUs).")]
TaskOpt = Annotated[Optional[str], typer.Option(help=f"{_tasks()}, or auto (told by the data's layout; default).")]
TaskOptionOpt = Annotated[Optional[list[str]], typer.Option(
    "--task-option", help="A task's own setting as KEY=VALUE, repeatable (e.g. decoder=fpn, detector=retinanet).")]
HitOpt = Annotated[Optional[str], typer.Option(
    help="Detection: when a detection finds a true box for the FROC, 'iou' (IoU >= 0.5, default) or 'centre' (its "
         "centre inside the box); the same as --task-option hit=….")]
TestFractionOpt = Annotated[Optional[float], typer.Option(
    help="Share of the data in a seeded test split when the source gives none (default: the task's).")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N.")]
LabelColumnOpt = Annotated[Optional[str], typer.Option(help="CSV label column (default: 'label').")]
PathColumnOpt = Annotated[Optional[str], typer.Option(help="CSV image-path column (default: 'path').")]
WindowOpt = Annotated[Optional[str], typer.Option(help="DICOM window as CENTRE,WIDTH (default: from the header).")]
TrackOpt = Annotated[Optional[list[str]], typer.Option(metavar="TRACKER", help=(
    "Also log to mlflow (a SQLite store in the output folder), mlflow=URI or tensorboard; repeatable. Needs "
    "medtransfer[mlflow] / [tensorboard]."))]
ExperimentOpt = Annotated[Optional[str], typer.Option(help="MLflow experiment (default: the output folder's name).")]


def _task_options(pairs: list[str] | None, hit: str | None = None) -> dict | None:
    """``["decoder=fpn", "depth=3"]`` as ``{"decoder": "fpn", "depth": 3}`` (values read as YAML scalars); ``hit``
    is detection's ``hit`` option."""
    from medtransfer.config_files import YAMLError, parse_yaml

    if not pairs and hit is None:
        return None
    out = {} if hit is None else {"hit": hit}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--task-option {pair!r}: give KEY=VALUE, e.g. decoder=fpn")
        try:
            out[key.strip()] = parse_yaml(value)
        except YAMLError:
            out[key.strip()] = value
    return out


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _source_options(label_column: str | None, path_column: str | None, window: str | None) -> dict:
    opts: dict = {}
    if label_column:
        opts["label_column"] = label_column
    if path_column:
        opts["path_column"] = path_column
    if window:
        try:
            c, w = (float(v) for v in window.split(","))
        except ValueError:
            raise ConfigError(f"--window {window!r}: give CENTRE,WIDTH, e.g. 40,400") from None
        opts["window"] = (c, w)
    return opts


@app.command()
def train(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    strategy: Annotated[Optional[str], typer.Option(
        help=f"scratch, linear, tune:K, full, surgical:i or lp-ft (default {_default(RunConfig, 'strategy')}).")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Default {_default(RunConfig, 'seed')}.")] = None,
    task: TaskOpt = None,
    task_option: TaskOptionOpt = None,
    hit: HitOpt = None,
    backbone: Annotated[Optional[str], typer.Option(
        help=f"Any timm model name (default {_default(RunConfig, 'backbone')}).")] = None,
    weights: Annotated[Optional[str], typer.Option(
        help=f"imagenet, scratch, or a .safetensors/.pth file (default {_default(RunConfig, 'weights')}).")] = None,
    input_size: Annotated[Optional[int], typer.Option(
        help=f"Images are resized to this square size (default {_default(RunConfig, 'input_size')}"
             f"{_recipes('input_size')}, or the stored images' size when smaller).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"Default: {_BUDGET}{_recipes('epochs', True)}.")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"Default {TrainConfig.lr}{_recipes('lr', True)}.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Default {TrainConfig.batch_size}{_recipes('batch_size', True)}.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help=f"adamw or sgd (default {TrainConfig.optimizer}).")] = None,
    patience: Annotated[Optional[int], typer.Option(
        help=f"Stop after this many epochs without a gain in the validation score (0: never; default "
             f"{TrainConfig.patience}).")] = None,
    fraction: Annotated[Optional[float], typer.Option("--train-fraction", "--fraction",
                                                      help=f"Share of the training split used (default "
                                                           f"{_default(RunConfig, 'train_fraction'):g}).")] = None,
    test_fraction: TestFractionOpt = None,
    augment: Annotated[Optional[str], typer.Option(
        help=f"none, light, strong or boxes (default {_default(RunConfig, 'augmentation')}"
             f"{_recipes('augmentation')}).")] = None,
    hflip: Annotated[bool, typer.Option(help="Allow left-right flips (off: anatomy has sides).")] = False,
    vflip: Annotated[bool, typer.Option(help="Allow up-down flips (e.g. endoscopy, microscopy).")] = False,
    device: Annotated[Optional[str], typer.Option(
        help=f"auto (CUDA when present), cpu, cuda or cuda:N (default {_default(RunConfig, 'device')}).")] = None,
    precision: PrecisionOpt = None,
    label_column: LabelColumnOpt = None,
    path_column: PathColumnOpt = None,
    window: WindowOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder (when the new run has finished).")] = False,
    track: TrackOpt = None,
    experiment: ExperimentOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Fine-tune (or train from scratch) one network and write its run folder."""
    from medtransfer.console import metrics_table, progress_bars, stdout
    from medtransfer.run import train as run_train

    augmentation = _augmentation(augment, hflip, vflip)
    train_given = _given(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer)
    if patience is not None:
        train_given["patience"] = patience or None
    config = RunConfig.with_recipe(**_given(
        data=data, strategy=strategy, backbone=backbone, weights=weights, input_size=input_size, seed=seed,
        train_fraction=fraction, augmentation=augmentation, device=device, task=task, precision=precision,
        task_options=_task_options(task_option, hit), test_fraction=test_fraction,
        train=train_given or None,
        source_options=_source_options(label_column, path_column, window) or None,
    ))
    with progress_bars(not quiet) as progress:
        result = run_train(config, out, progress=progress, overwrite=overwrite, track=track,
                           experiment=experiment)
    m = result.metrics
    stdout.print(metrics_table(m["test"], f"{m['data']['name']} · {m['strategy']} · seed {config.seed} · test"))
    stdout.print(f"best epoch {m['best_epoch']} of {m['epochs_run']} ({m['stopped']}), {m['total_seconds']:.0f} s; run folder: {out}")


def _augmentation(augment: str | None, hflip: bool, vflip: bool) -> str | None:
    """The preset with its flips, or None when nothing was given (the config's default)."""
    if augment is None and not (hflip or vflip):
        return None
    base = augment or _default(RunConfig, "augmentation")
    return base + ("+hflip" if hflip else "") + ("+vflip" if vflip else "")


def _split_list(text: str | None, cast, flag: str):
    if text is None:
        return None
    try:
        return [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give a comma-separated list") from None


def _run_study(config, out: Path, device: str, new_folder: bool, quiet: bool, cache_memory: str | None = None,
               executor: str = "auto", **executor_options) -> None:
    from medtransfer.cache import parse_memory
    from medtransfer.console import line_printer, progress_bars, stdout
    from medtransfer.study import Study
    from medtransfer.study.executors import make_executor
    from medtransfer.training import resolve_device

    runs = make_executor(executor, device=str(resolve_device(device)), **executor_options)
    study = Study(config, out, device=device, new_folder=new_folder, cache_memory=parse_memory(cache_memory),
                  executor=runs)
    plan, pending = study.plan(), study.pending()
    grid = f"{len(study.strategies())} strategies × {len(config.fractions)} training fractions × {len(config.seeds)} seeds"
    if config.search == "grid":
        what = f"{len(plan)} trials ({grid}); {len(plan) - len(pending)} already done"
    elif config.search == "halving":
        done = len(study.store.finished_ids()) if study.store.exists() else 0
        what = (f"successive halving over {len(plan)} trials ({grid}; the best 1/{config.halving_rate} of the "
                f"strategies at each rung go on); {done} already done, {len(pending)} in the next round")
    else:
        what = (f"layer-wise search over at most {len(study.strategies()) * len(config.fractions) * len(config.seeds)} "
                f"trials ({grid}); {len(plan) - len(pending)} done, {len(pending)} in the next round")
    stdout.print(f"Study in {study.folder}: {what}. Runs on: {runs.where(study.device)}.")
    with progress_bars(not quiet, epoch_lines=False) as progress:  # without a terminal: a plain line per trial
        summary = study.run(progress=progress, log=line_printer(progress))
    from medtransfer.report.outcome import end_study

    end_study(summary, study.folder, on_report=study.tracking.report)  # exits 2 when no trial finished


@app.command()
def study(
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="MedMNIST name or .npz, CSV manifest, image folder, or image + mask pairs.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder (rerun the same command to resume).")] = Path("studies/study"),
    task: TaskOpt = None,
    task_option: TaskOptionOpt = None,
    hit: HitOpt = None,
    test_fraction: TestFractionOpt = None,
    augment: Annotated[Optional[str], typer.Option(
        help=f"none, light, strong or boxes, with +hflip/+vflip (default "
             f"{_default(StudyConfig, 'augmentation')}{_recipes('augmentation')}).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A study.yaml; flags override it.")] = None,
    strategies: Annotated[Optional[str], typer.Option(help="Comma-separated, e.g. scratch,linear,tune:3,full (default: all depths; opt-in: surgical:i, lp-ft).")] = None,
    fractions: Annotated[Optional[str], typer.Option(help="Training fractions, e.g. 1,0.5,0.25,0.1.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="A count (3) or a list (0,1,2).")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Any timm model name.")] = None,
    weights: Annotated[Optional[str], typer.Option(help="imagenet or a .safetensors/.pth file.")] = None,
    input_size: Annotated[Optional[int], typer.Option(
        help=f"Images are resized to this square size (default {_default(StudyConfig, 'input_size')}"
             f"{_recipes('input_size')}, or the stored images' size when smaller).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"Maximum epochs per trial (default: {_BUDGET}{_recipes('epochs', True)}).")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"Learning rate of the tuned layers (default {TrainConfig.lr}{_recipes('lr', True)}).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Training batch size (default {TrainConfig.batch_size}{_recipes('batch_size', True)}).")] = None,
    checkpoints: Annotated[Optional[str], typer.Option(
        help=f"best (per strategy), all, or none (default {_default(StudyConfig, 'checkpoints')}).")] = None,
    search: Annotated[Optional[str], typer.Option(
        help="grid (every strategy), layerwise (linear, tune:1, tune:2, … until deeper stops helping, plus scratch "
             "and full) or halving (every trial starts and pauses at each rung; the better strategies resume; "
             f"default {_default(StudyConfig, 'search')}).")] = None,
    patience_depth: Annotated[Optional[int], typer.Option(
        help="Layer-wise search: stop after this many depths in a row without a gain beyond one standard error "
             f"(default {_default(StudyConfig, 'patience_depth')}).")] = None,
    halving_rate: Annotated[Optional[int], typer.Option(
        help="Successive halving: the best 1/RATE of the strategies at each rung go on "
             f"(default {_default(StudyConfig, 'halving_rate')}).")] = None,
    recommend: Annotated[Optional[str], typer.Option(
        help="argmax (best mean validation score) or one-se (the cheapest strategy within one standard error of "
             f"the best; default {_default(StudyConfig, 'recommend')}).")] = None,
    new_folder: Annotated[bool, typer.Option(help="If OUT holds another configuration, write to OUT-2 instead.")] = False,
    cache: Annotated[Optional[bool], typer.Option("--cache/--no-cache", help="Compute frozen layers once (default on).")] = None,
    cache_views: Annotated[Optional[int], typer.Option(
        help=f"Augmented views cached per training image (default {_default(StudyConfig, 'cache_views')}).")] = None,
    cache_memory: Annotated[Optional[str], typer.Option(help="RAM for the cache, e.g. 4GB or 0.25 (default: a quarter of free RAM).")] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    executor: ExecutorOpt = "auto",
    workers: WorkersOpt = None,
    threads_per_worker: ThreadsOpt = None,
    ray_address: RayAddressOpt = None,
    gpus_per_trial: GpusOpt = None,
    label_column: LabelColumnOpt = None,
    path_column: PathColumnOpt = None,
    window: WindowOpt = None,
    track: TrackOpt = None,
    experiment: ExperimentOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Scratch vs. every fine-tuning depth × training-set sizes × seeds, with a recommended depth. Resumable."""
    train_overrides = {k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)) if v is not None}
    seed_list = None
    if seeds is not None:
        seed_list = _split_list(seeds, int, "--seeds")
        if len(seed_list) == 1 and "," not in seeds:
            if seed_list[0] < 1:
                raise ConfigError(f"--seeds {seeds}: a count must be at least 1; to run seed 0 alone, give --seeds 1")
            seed_list = list(range(seed_list[0]))
    overrides = {
        "data": data, "strategies": _split_list(strategies, str, "--strategies"),
        "fractions": _split_list(fractions, float, "--fractions"), "seeds": seed_list, "backbone": backbone,
        "weights": weights, "input_size": input_size, "checkpoints": checkpoints, "cache": cache,
        "cache_views": cache_views, "task": task, "test_fraction": test_fraction, "augmentation": augment,
        "precision": precision, "search": search, "patience_depth": patience_depth, "halving_rate": halving_rate,
        "recommend": recommend, "track": track, "experiment": experiment,
        "task_options": _task_options(task_option, hit),
        "source_options": _source_options(label_column, path_column, window) or None,
        "train": train_overrides or None,
    }
    if config is not None:
        cfg = StudyConfig.from_yaml(config, **overrides)
    else:
        if data is None:
            raise ConfigError("give --data (or --config with a 'data' entry)")
        cfg = StudyConfig.with_recipe(**{k: v for k, v in overrides.items() if v is not None})
    _run_study(cfg, out, device, new_folder, quiet, cache_memory=cache_memory, executor=executor, workers=workers,
               threads=threads_per_worker, ray_address=ray_address, gpus_per_trial=gpus_per_trial)


@app.command()
def demo(
    data: Annotated[str, typer.Option("--data", "-d", help="BreastMNIST by name (medmnist cache) or a path.")] = "breastmnist",
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder.")] = Path("studies/demo"),
    device: DeviceOpt = "auto",
    executor: ExecutorOpt = "auto",
    workers: WorkersOpt = None,
    threads_per_worker: ThreadsOpt = None,
    track: TrackOpt = None,
    experiment: ExperimentOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """The layer-wise study on BreastMNIST: every strategy, 2 training-set sizes, 1 seed (≈8–12 minutes on a 2-core CPU)."""
    from medtransfer.study.demo import demo_config

    _run_study(dataclasses.replace(demo_config(data), track=track, experiment=experiment), out, device, new_folder=True, quiet=quiet, executor=executor, workers=workers,
               threads=threads_per_worker)


@app.command()
def report(
    study_dir: Annotated[Path, typer.Argument(help="A study folder written by 'medtransfer study'.")],
    show_filenames: Annotated[bool, typer.Option(help="Name the image files shown in the heat maps.")] = False,
) -> None:
    """Write STUDY_DIR/report.html: the answers, the recommendation, tables and figures, in one self-contained page."""
    from medtransfer.report.outcome import report_study

    report_study(study_dir, show_filenames=show_filenames)  # exits 2 when no trial of the study finished


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder written by 'medtransfer train'.")],
    data: DataOpt,
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "test",
    device: DeviceOpt = "auto",
    label_column: LabelColumnOpt = None,
    path_column: PathColumnOpt = None,
    window: WindowOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a saved model on any source."""
    from medtransfer.console import metrics_table, stdout
    from medtransfer.run import evaluate as run_evaluate

    result = run_evaluate(run, data, split=split, device=device, source_options=_source_options(label_column, path_column, window))
    if json_out:
        stdout.print_json(json.dumps(result))
    else:
        stdout.print(metrics_table(result["metrics"], f"{run} on {data} · {split} ({result['n']} images)"))


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A run folder, or a study folder (its recommended model).")],
    inputs: Annotated[Path, typer.Argument(metavar="INPUT", help="An image, a folder of images (PNG, JPEG, TIFF, "
                                           "BMP, DICOM; NIfTI volumes for segmentation models) or a CSV of image "
                                           "paths (column 'path').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the predictions into.")],
    strategy: Annotated[Optional[str], typer.Option(help="In a study folder: this strategy's model instead of the "
                                                         "recommended one.")] = None,
    heatmaps: Annotated[bool, typer.Option(help="Classification: a Grad-CAM overlay per image in OUT/heatmaps/.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    device: DeviceOpt = "cpu",
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder, as a whole.")] = False,
) -> None:
    """Predict new, unlabelled images with a saved model, preprocessed as its training images were."""
    from medtransfer.console import console, progress_bars, stdout
    from medtransfer.delivery.predict import predict as run_predict

    with progress_bars(not quiet) as progress:
        result = run_predict(model, inputs, out, strategy=strategy, heatmaps=heatmaps, batch_size=batch_size,
                             device=device, progress=progress, overwrite=overwrite)
    stdout.print(f"{result.predicted} images predicted with {result.model}; written to {result.out}")
    if result.errors:
        stdout.print(f"{len(result.errors)} files could not be read; see {result.out / 'errors.csv'}")
    for notice in result.notices:  # e.g. colour images converted for a gray model
        console.print(notice, markup=False, highlight=False, soft_wrap=True)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A run folder, or a study folder (its recommended model).")],
    format: Annotated[str, typer.Option("--format", help="onnx.")] = "onnx",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The file to write (default: "
                                                "MODEL_FOLDER/model.onnx), with OUT.json beside it.")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="In a study folder: this strategy's model.")] = None,
    check: Annotated[Optional[Path], typer.Option(help="Also check onnxruntime against PyTorch on these images (a "
                                                       "file, folder or CSV of paths).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUT and OUT.json.")] = False,
) -> None:
    """Export a saved model to ONNX (uint8 images in, probabilities out), checked with onnxruntime."""
    from medtransfer.console import stdout
    from medtransfer.delivery.export import export_model

    r = export_model(model, out, format=format, strategy=strategy, check=check, overwrite=overwrite)
    stdout.print(f"{r.path} (+ {r.sidecar.name}) from {r.model}: onnxruntime vs PyTorch max abs difference "
                 f"{r.max_abs_diff:.2e} on {r.checked} images")


@backbones_app.command("show")
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


@backbones_app.command("list")
def backbones_list(pattern: Annotated[str, typer.Argument(help="A glob, e.g. '*efficientnet*'.")] = "*") -> None:
    """timm models matching PATTERN; those with offline ImageNet weights are marked."""
    from medtransfer.backbones import BUNDLED, available_backbones
    from medtransfer.console import stdout, styled

    for name in available_backbones(pattern):
        stdout.print(styled(f"{name}  ", ("(offline ImageNet weights)", "green")) if name in BUNDLED else name)


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


if __name__ == "__main__":
    main()
