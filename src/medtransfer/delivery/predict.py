"""``predict``: a saved model on new, unlabelled images, preprocessed as its training images were.

The model is a run folder or a study folder (its recommended model, or another strategy's); the images are a file,
a folder or a CSV of paths (:mod:`medtransfer.delivery.inputs`). What is written per image is the task's
(:meth:`~medtransfer.tasks.TaskWriter.prediction_writer`): class probabilities for classification, masks and areas for
segmentation, boxes for detection. A file that cannot be read is listed in ``errors.csv`` with its reason and the others are predicted;
when none can be read, a :class:`~medtransfer.errors.DataError` is raised (after the folder with its ``errors.csv`` is
written). The output folder is written as a whole or not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from medtransfer.delivery.inputs import NewImage, batch_tensor, input_paths, read_new_images
from medtransfer.delivery.model_folder import saved_model_folder
from medtransfer.output_files import CsvTable
from medtransfer.errors import DataError
from medtransfer.files import atomic_folder, check_output_folder, refuse_existing
from medtransfer.model.saved import load_model
from medtransfer.training import resolve_device


@dataclass
class PredictionResult:
    model: Path  # the model folder used
    out: Path
    predicted: int  # images predicted (each slice of a NIfTI volume counts as one)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path as given, reason) of the unreadable ones
    files: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what was done to the inputs that the user should know


def predict(model: str | os.PathLike, inputs: str | os.PathLike, out: str | os.PathLike, *,
            strategy: str | None = None, heatmaps: bool = False, batch_size: int = 32, device: str = "cpu",
            progress=None, overwrite: bool = False) -> PredictionResult:
    """Run the model in ``model`` on the images ``inputs`` names and write the predictions into ``out``.

    The files are written into a hidden sibling of ``out`` that takes its place when all are written, so ``out``
    never mixes two predictions' files; an existing ``out`` is replaced (as a whole) only with ``overwrite``."""
    folder = saved_model_folder(model, strategy)
    out = Path(out)
    refuse_existing(out, overwrite=overwrite, what="predictions folder")
    check_output_folder(out, str(inputs))
    dev = resolve_device(device)
    saved = load_model(folder, dev)
    paths = input_paths(inputs)
    with atomic_folder(out, overwrite=overwrite, what="predictions folder") as written:
        done, converted, errors, files = _predict_into(written, saved, paths, heatmaps, batch_size, dev, progress)
    files = [out / f.relative_to(written) for f in files]
    if not done:  # the folder is kept: its errors.csv says why each file could not be read
        raise DataError(f"{inputs}: none of the {len(paths)} images could be read; their reasons are in "
                        f"{out / 'errors.csv'}")
    notices = [f"{converted} colour image(s) were converted to gray (ITU-R 601-2 luma) for this model, which was "
               f"trained on gray images."] if converted else []
    return PredictionResult(model=folder, out=out, predicted=done, errors=errors, files=files, notices=notices)


def _predict_into(out: Path, saved, paths: list[str], heatmaps: bool, batch_size: int, dev, progress):
    """Predict ``paths`` into the folder ``out``: (images predicted, colour images converted to gray, (path, reason)
    of the unreadable ones, the files written)."""
    writer = saved.task.writer.prediction_writer(saved, out, heatmaps=heatmaps)
    errors: list[tuple[str, str]] = []
    batch: list[NewImage] = []
    done = converted = 0
    bar = progress.add_task("predicting", total=len(paths)) if progress is not None else None

    def flush() -> None:
        nonlocal done
        if batch:
            with torch.no_grad():
                outputs = saved.net(batch_tensor(batch).to(dev))
            if isinstance(outputs, torch.Tensor):  # a detector's outputs are the task's to read
                outputs = outputs.float().cpu()
            writer.add(batch, outputs)
            done += len(batch)
            batch.clear()

    try:
        for path in paths:
            try:
                images = read_new_images(path, saved.spec, volumes=saved.task.writer.volumes)
            except DataError as e:
                message = str(e)
                errors.append((path, message[len(path) + 2:] if message.startswith(f"{path}: ") else message))
                images = []
            for image in images:
                converted += image.to_gray
                batch.append(image)
                if len(batch) >= batch_size:
                    flush()
            if bar is not None:
                progress.advance(bar)
        flush()
    finally:
        files = writer.close()
        if bar is not None:
            progress.remove_task(bar)
    if errors:
        table = CsvTable(out / "errors.csv", ["path", "reason"])
        for row in errors:
            table.add(list(row))
        files.append(table.close())
    return done, converted, errors, files
