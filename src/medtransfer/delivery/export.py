"""``export``: a saved model as an ONNX file that needs neither PyTorch nor medtransfer, checked with onnxruntime.

The graph is the whole delivered model: it takes the ``uint8`` image tensor the PyTorch network takes
(``B×C×S×S``, the batch axis dynamic, C and S those of training), normalises it inside, runs the network and
returns the task's :meth:`~medtransfer.tasks.TaskWriter.delivered_outputs` (class probabilities with the fitted
temperature applied, or per-pixel class probabilities). A JSON sidecar says what a caller must do before it
(resize; gray or RGB), and what comes out.

Exporter: ``torch.onnx.export`` with the TorchScript tracer (``dynamo=False``), which traces timm's and
segmentation-models-pytorch's modules as they are, without the extra ``onnxscript`` dependency of the newer
exporter. timm's ``tf_`` models pad 'SAME' dynamically (``Conv2dSame`` computes the padding from the input size):
tracing fixes it for the size traced, so the graph takes exactly the model's input size (a fixed input size, not
timm's ``exportable=True``); the sidecar says so and the input's spatial axes are static.

Checked at export: onnxruntime's outputs against PyTorch's on random images (one and several per batch) and on any
images given (``check``); the largest absolute difference is reported, and above :data:`TOLERANCE` the export fails.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medtransfer.delivery.inputs import batch_tensor, input_paths, read_new_image
from medtransfer.delivery.model_folder import model_folder
from medtransfer.errors import ConfigError, ExportError
from medtransfer.files import atomic_files
from medtransfer.model.saved import DeliveredNet, SavedModel, load_model

#: the largest absolute difference between onnxruntime's and PyTorch's probabilities an export may have
TOLERANCE = 1e-4
FORMATS = ("onnx",)
OPSET = 17
INPUT, OUTPUT = "image", "probabilities"


@dataclass
class ExportResult:
    model: Path  # the model folder exported
    path: Path  # the ONNX file
    sidecar: Path  # its JSON description
    max_abs_diff: float  # onnxruntime vs PyTorch, over the check inputs
    checked: int  # images in the check


def export_model(model: str | os.PathLike, out: str | os.PathLike | None = None, *, format: str = "onnx",
                 strategy: str | None = None, check: str | os.PathLike | None = None,
                 opset: int = OPSET, overwrite: bool = False) -> ExportResult:
    """Export the model in ``model`` (a run or study folder) to ``out`` (default ``<model folder>/model.onnx``),
    with ``<out>.json`` beside it, and check it with onnxruntime (also on the images ``check`` names). The two files
    are written beside ``out`` and moved into place together once the check has passed, so a failed export leaves
    neither; existing ones are replaced only with ``overwrite``."""
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose {' or '.join(FORMATS)}")
    folder = model_folder(model, strategy)
    path = Path(out) if out is not None else folder / "model.onnx"
    sidecar = path.with_name(path.name + ".json")
    with atomic_files([path, sidecar], overwrite=overwrite, what="exported model") as (onnx_file, json_file):
        saved = load_model(folder, "cpu")
        if saved.task.writer.export_refusal:
            raise ConfigError(saved.task.writer.export_refusal)
        spec = saved.spec
        size, channels = int(spec["input_size"]), int(spec.get("channels") or 3)
        inputs = _check_inputs(saved, channels, size, check)  # unreadable check images fail before the export
        delivered = DeliveredNet(saved).eval()
        example = torch.randint(0, 256, (2, channels, size, size), dtype=torch.uint8,
                                generator=torch.Generator().manual_seed(0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(delivered, (example,), str(onnx_file), dynamo=False, opset_version=opset,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
        diff = _max_abs_diff(delivered, onnx_file, inputs)
        checked = sum(len(x) for x in inputs)
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise ExportError(f"{folder}: the ONNX graph's probabilities differ from PyTorch's by up to {diff:.2e} "
                              f"(more than {TOLERANCE:g}) on {checked} images; nothing was written. Try another "
                              f"--opset.")
        json_file.write_text(json.dumps(describe(saved, channels, size, opset, diff, checked), indent=2))
    return ExportResult(model=folder, path=path, sidecar=sidecar, max_abs_diff=diff, checked=checked)


def _check_inputs(saved: SavedModel, channels: int, size: int, check) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g) for n in (1, 3)]
    if check is not None:
        images = [read_new_image(p, saved.spec) for p in input_paths(check)]
        batches += [batch_tensor(images[i:i + 64]) for i in range(0, len(images), 64)]
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
        "format": "medtransfer-onnx/1",
        "task": task.name,
        "class_names": classes,
        **({"label_kind": spec["label_kind"]} if "label_kind" in spec else {}),
        "input": {"name": INPUT, "dtype": "uint8", "layout": "NCHW", "shape": ["batch", channels, size, size],
                  "channels": "gray (1)" if channels == 1 else "RGB (3)"},
        "output": {"name": OUTPUT, "dtype": "float32", **output},
        "preprocessing": {
            "caller": [f"read the image as 8-bit {'gray' if channels == 1 else 'RGB'} (DICOM: rescale, then the "
                       f"VOI LUT or window{' ' + str(spec['window']) if spec.get('window') else ' of the header'}, "
                       f"MONOCHROME1 inverted)",
                       f"resize to {size}×{size} (bicubic with anti-aliasing, aspect ratio not kept; other "
                       f"libraries' bicubic differs slightly from PyTorch's)",
                       "stack as uint8 N×C×H×W"],
            "inside_the_graph": {"normalisation": {"mean": spec.get("mean"), "std": spec.get("std"),
                                                   "scale": "pixel / 255"},
                                 **({"temperature": spec.get("temperature")} if "temperature" in spec else {})},
        },
        "input_size_fixed": f"the spatial size is fixed at {size}×{size}: timm's 'SAME' padding of tf_ models is "
                            f"computed for it at export",
        "model": {k: spec.get(k) for k in ("backbone", "strategy", "weights", "trial") if spec.get(k) is not None},
        **({"calibration": spec["calibration"]} if "calibration" in spec else {}),
        "check": {"runtime": "onnxruntime (CPU)", "images": checked, "max_abs_diff": diff, "tolerance": TOLERANCE},
        "exporter": f"torch.onnx (TorchScript tracer), opset {opset}",
        "versions": {"medtransfer": version("medtransfer"), "torch": torch.__version__, "timm": timm.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
