"""``medtransfer predict`` and ``medtransfer export``: a saved model put to use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medtransfer.cli.flags import read_flags, takes_flags

ModelArg = Annotated[Path, typer.Argument(help="A run folder, or a study folder (its recommended model).")]


@takes_flags("predict")
def predict(
    model: ModelArg,
    inputs: Annotated[Path, typer.Argument(metavar="INPUT", help="An image, a folder of images (PNG, JPEG, TIFF, "
                                           "BMP, DICOM; NIfTI volumes for segmentation models) or a CSV of image "
                                           "paths (column 'path').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the predictions into.")],
    strategy: Annotated[Optional[str], typer.Option(help="In a study folder: this strategy's model instead of the "
                                                         "recommended one.")] = None,
    heatmaps: Annotated[bool, typer.Option(help="Classification: a Grad-CAM overlay per image in OUT/heatmaps/.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder, as a whole.")] = False,
    **flags,
) -> None:
    """Predict new, unlabelled images with a saved model, preprocessed as its training images were."""
    from medtransfer.console import console, progress_bars, stdout
    from medtransfer.delivery.predict import predict as run_predict

    given = read_flags("predict", flags)
    with progress_bars(not given["quiet"]) as progress:
        result = run_predict(model, inputs, out, strategy=strategy, heatmaps=heatmaps, batch_size=batch_size,
                             device=given["device"], progress=progress, overwrite=overwrite)
    stdout.print(f"{result.predicted} images predicted with {result.model}; written to {result.out}")
    if result.errors:
        stdout.print(f"{len(result.errors)} files could not be read; see {result.out / 'errors.csv'}")
    for notice in result.notices:  # e.g. colour images converted for a gray model
        console.print(notice, markup=False, highlight=False, soft_wrap=True)


def export(
    model: ModelArg,
    format: Annotated[str, typer.Option("--format", help="onnx.")] = "onnx",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The file to write (default: "
                                                "MODEL_FOLDER/model.onnx), with OUT.json beside it.")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="In a study folder: this strategy's model.")] = None,
    check: Annotated[Optional[Path], typer.Option(help="Also check onnxruntime against PyTorch on these images (a "
                                                       "file, folder or CSV of paths).")] = None,
    check_test: Annotated[Optional[Path], typer.Option(help="The data the run was trained on: also run the graph on "
                                                            "its test images decoded with PIL and compare with the "
                                                            "run's test_predictions.csv.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUT and OUT.json.")] = False,
) -> None:
    """Export a saved model to ONNX (decoded uint8 images at their own size in, probabilities out), checked with
    onnxruntime."""
    from medtransfer.console import stdout
    from medtransfer.delivery.export import export_model

    r = export_model(model, out, format=format, strategy=strategy, check=check, overwrite=overwrite,
                     check_test=check_test)
    stdout.print(f"{r.path} (+ {r.sidecar.name}) from {r.model}: onnxruntime vs PyTorch max abs difference "
                 f"{r.max_abs_diff:.2e} at the input size, {r.other_sizes_diff:.2e} at other sizes, on {r.checked} "
                 f"images")
    if r.test_split is not None:
        t = r.test_split
        stdout.print(f"test split, decoded with PIL at their own size: onnxruntime vs the run's stored "
                     f"{', '.join(t.columns)}: max abs difference {t.max_abs_diff:.2e} on {t.images} images")
