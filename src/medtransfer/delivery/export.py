"""``export``: a saved model as an ONNX file that needs neither PyTorch nor medtransfer, checked with onnxruntime.

The graph is the whole delivered model: it takes a decoded ``uint8`` image at its own size (``B×C×H×W``, C 1 or
3, H and W dynamic), converts its channels, resizes it as training did, normalises it, runs the network and returns
the task's :meth:`~medtransfer.tasks.TaskWriter.delivered_outputs` (class probabilities with the fitted temperature
applied, or per-pixel class probabilities at the image's size): see :mod:`medtransfer.delivery.onnx_resize`. A
JSON sidecar says what goes in (the decoded image as it is), what the graph does, and what comes out.

Exporter: ``torch.onnx.export`` with the TorchScript tracer (``dynamo=False``), which traces timm's and
segmentation-models-pytorch's modules as they are, without the extra ``onnxscript`` dependency of the newer
exporter. timm's ``tf_`` models pad 'SAME' dynamically (``Conv2dSame`` computes the padding from the input size):
tracing fixes it for the size traced, which is harmless since the network inside the graph always sees the
model's input size.

Checked at export: onnxruntime's outputs against PyTorch's on random images at the input size (the network's
conversion: above :data:`TOLERANCE` the export fails), and on random images of other sizes (gray and RGB) and any
images given (``check``, each at its own size), where the in-graph resize's rare rounding ties count too (above
:data:`~medtransfer.delivery.onnx_resize.RESIZE_TOLERANCE` the export fails); both largest absolute differences are
reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medtransfer.delivery.inputs import input_paths, read_new_images
from medtransfer.delivery.model_folder import saved_model_folder
from medtransfer.delivery.onnx_resize import (MIN_OPSET, RESIZE_TOLERANCE, NativeSizeNet, export_native_size,
                                              graph_input, graph_preprocessing)
from medtransfer.delivery.onnx_test_check import TestSplitCheck, check_test_split
from medtransfer.errors import ConfigError, ExportError
from medtransfer.files import atomic_files
from medtransfer.model.saved import SavedModel, load_model

#: the largest absolute difference between onnxruntime's and PyTorch's probabilities an export may have
TOLERANCE = 1e-4
FORMATS = ("onnx",)
OPSET = MIN_OPSET
INPUT, OUTPUT = "image", "probabilities"


@dataclass
class ExportResult:
    model: Path  # the model folder exported
    path: Path  # the ONNX file
    sidecar: Path  # its JSON description
    max_abs_diff: float  # onnxruntime vs PyTorch, on images at the input size (the network's conversion)
    checked: int  # images in the check
    other_sizes_diff: float = 0.0  # the same on images of other sizes (the in-graph resize too)
    test_split: TestSplitCheck | None = None  # the graph against the run's stored test predictions (check_test)


def export_model(model: str | os.PathLike, out: str | os.PathLike | None = None, *, format: str = "onnx",
                 strategy: str | None = None, check: str | os.PathLike | None = None,
                 opset: int = OPSET, overwrite: bool = False, check_test: str | os.PathLike | None = None
                 ) -> ExportResult:
    """Export the model in ``model`` (a run or study folder) to ``out`` (default ``<model folder>/model.onnx``),
    with ``<out>.json`` beside it, and check it with onnxruntime (also on the images ``check`` names). The two files
    are written beside ``out`` and moved into place together once the check has passed, so a failed export leaves
    neither; existing ones are replaced only with ``overwrite``. ``check_test``: the data the run was trained on;
    the graph is also run on its test images as a deployer would (:mod:`~medtransfer.delivery.onnx_test_check`)."""
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose {' or '.join(FORMATS)}")
    folder = saved_model_folder(model, strategy)
    path = Path(out) if out is not None else folder / "model.onnx"
    sidecar = path.with_name(path.name + ".json")
    with atomic_files([path, sidecar], overwrite=overwrite, what="exported model") as (onnx_file, json_file):
        saved = load_model(folder, "cpu")
        if saved.task.writer.export_refusal:
            raise ConfigError(saved.task.writer.export_refusal)
        spec = saved.spec
        size, channels = int(spec["input_size"]), int(spec.get("channels") or 3)
        inputs = _check_inputs(saved, channels, size, check)  # unreadable check images fail before the export
        delivered = NativeSizeNet(saved).eval()
        export_native_size(delivered, onnx_file, opset, INPUT, OUTPUT)
        at_size = [x for x in inputs if tuple(x.shape[1:]) == (channels, size, size)]
        diff = _max_abs_diff(delivered, onnx_file, at_size)
        other = _max_abs_diff(delivered, onnx_file, [x for x in inputs if tuple(x.shape[1:]) != (channels, size, size)])
        checked = sum(len(x) for x in inputs)
        if not (diff <= TOLERANCE and other <= RESIZE_TOLERANCE):  # NaN fails too
            raise ExportError(f"{folder}: the ONNX graph's probabilities differ from PyTorch's by up to {diff:.2e} "
                              f"at the input size (more than {TOLERANCE:g}?) and {other:.2e} at other sizes (more "
                              f"than {RESIZE_TOLERANCE:g}?) on {checked} images; nothing was written. Try another "
                              f"--opset.")
        tested = None if check_test is None else check_test_split(saved, folder, onnx_file, str(check_test), INPUT)
        side = describe(saved, channels, size, opset, diff, checked)
        side["check"]["max_abs_diff_other_sizes"] = other
        if tested is not None:
            side["check"]["test_split"] = tested.summary()
        json_file.write_text(json.dumps(side, indent=2))
    return ExportResult(model=folder, path=path, sidecar=sidecar, max_abs_diff=diff, checked=checked,
                        other_sizes_diff=other, test_split=tested)


def _check_inputs(saved: SavedModel, channels: int, size: int, check) -> list[torch.Tensor]:
    """Random images at the input size, then smaller, larger and not square, gray and RGB, one and several per
    batch; then the images ``check`` names, each at its own size, as predict reads them."""
    g = torch.Generator().manual_seed(1)
    shapes = [(1, channels, size, size), (3, channels, size, size), (1, 1, size // 2 + 1, size + 9),
              (2, 3, 2 * size + 5, size - 3)]
    batches = [torch.randint(0, 256, shape, dtype=torch.uint8, generator=g) for shape in shapes]
    if check is not None:
        for path in input_paths(check):
            for image in read_new_images(path, saved.spec):
                pixels = torch.tensor(image.pixels)  # a copy: the pixels may be read-only
                batches.append((pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1))[None])
    return batches


def _max_abs_diff(delivered: nn.Module, path: Path, batches: list[torch.Tensor]) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in batches:
        with torch.no_grad():
            expected = delivered(x).numpy()
        got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
        if got.shape != expected.shape:
            return float("inf")
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max()))
    return worst


def describe(saved: SavedModel, channels: int, size: int, opset: int, diff: float, checked: int) -> dict:
    """The sidecar: what goes in, what comes out, and what a caller must do first."""
    import onnx
    import onnxruntime
    import timm

    spec, task = saved.spec, saved.task
    classes = list(spec["class_names"])
    output = task.writer.exported_output(size)
    return {
        "format": "medtransfer-onnx/2",  # /2: the decoded image at its own size goes in
        "task": task.name,
        "class_names": classes,
        **({"label_kind": spec["label_kind"]} if "label_kind" in spec else {}),
        "input": graph_input(spec, INPUT),
        "output": {"name": OUTPUT, "dtype": "float32", **output},
        "preprocessing": graph_preprocessing(spec),
        "model": {k: spec.get(k) for k in ("backbone", "strategy", "weights", "trial") if spec.get(k) is not None},
        **({"calibration": spec["calibration"]} if "calibration" in spec else {}),
        "check": {"runtime": "onnxruntime (CPU)", "images": checked, "max_abs_diff": diff, "tolerance": TOLERANCE},
        "exporter": f"torch.onnx (TorchScript tracer), opset {opset}",
        "versions": {"medtransfer": version("medtransfer"), "torch": torch.__version__, "timm": timm.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
