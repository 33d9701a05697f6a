"""``export --check-test DATA``: the exported graph run as a deployer runs it, on the run's test images, against the
test predictions the run stored.

Each test image is decoded with PIL at its own size (its file when the source has one, else its pixels written
as a PNG and read back) and given to onnxruntime as it is. The graph's outputs become the task's predictions (class
probabilities; per-pixel probabilities become masks by their argmax) and go through the task's own
:meth:`~medtransfer.tasks.Task.predictions_csv`, so the comparison reads the same columns the run wrote
(``p_<class>``, or each class's Dice for segmentation) and reports the largest absolute difference.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtransfer.errors import DataError
from medtransfer.model.saved import SavedModel

#: the PIL modes a deployer keeps as gray; every other mode is decoded to RGB
GRAY_MODES = ("1", "L", "LA")


@dataclass
class TestSplitCheck:
    images: int  # test images run through the graph
    columns: list[str]  # the stored columns compared
    max_abs_diff: float  # over those columns and images

    def summary(self) -> dict:
        return {"images": self.images, "columns": self.columns, "max_abs_diff": self.max_abs_diff,
                "decoded_with": "PIL, each image at its own size"}


def check_test_split(saved: SavedModel, folder: Path, onnx_path: Path, data: str, input_name: str) -> TestSplitCheck:
    """onnxruntime on the test images of the run in ``folder`` (read from ``data``, the data it was trained on)
    against its ``test_predictions.csv``."""
    import onnxruntime as ort

    stored = _stored_rows(folder)
    indices = np.array([int(r["sample"]) for r in stored])
    images = saved.task.inputs.read(str(data), **_source_options(folder))
    if images.class_names != saved.task.class_names or len(images.samples) <= indices.max():
        raise DataError(f"{data}: not the data the run in {folder} was trained on (classes {images.class_names}, "
                        f"{len(images.samples)} images); give the data given to 'medtransfer train'")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    predictions = []
    with tempfile.TemporaryDirectory(prefix="medtransfer-check-") as tmp:
        for i in indices:
            pixels = decoded_with_pil(images.samples[int(i)], Path(tmp))
            x = pixels[None, None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)[None]
            out = session.run(None, {input_name: np.ascontiguousarray(x)})[0][0]
            predictions.append(out.argmax(0).astype(np.uint8) if out.ndim == 3 else out)  # per pixel: the mask
    targets = saved.task.codec.own_size_targets(images, indices)
    if targets is None:
        targets = saved.task.codec.load_targets(images, indices, saved.input_size)
    if not any(p.ndim == 2 for p in predictions):
        predictions = np.stack(predictions)
    ours = list(csv.DictReader(io.StringIO(saved.task.writer.predictions_csv(indices, predictions, targets))))
    columns = [c for c in ours[0] if c in stored[0] and c != "sample" and not c.startswith("target_")]
    if not columns:
        raise DataError(f"{folder / 'test_predictions.csv'}: holds none of the columns {list(ours[0])}; it was "
                        f"written by another version")
    diff = max(abs(float(a[c]) - float(b[c])) for a, b in zip(ours, stored) for c in columns)
    return TestSplitCheck(images=len(indices), columns=columns, max_abs_diff=diff)


def decoded_with_pil(sample, tmp: Path) -> np.ndarray:
    """The sample's image as a deployer decodes it: its file with PIL, or (a source without files, such as a
    MedMNIST array) its pixels saved as a PNG and read back with PIL; ``uint8`` ``H×W`` or ``H×W×3``."""
    from PIL import Image

    path = Path(sample.ref)
    if not path.is_file():
        path = tmp / "image.png"
        Image.fromarray(np.asarray(sample.load(), dtype=np.uint8)).save(path)
    with Image.open(path) as im:
        return np.asarray(im.convert("L" if im.mode in GRAY_MODES else "RGB"))


def _stored_rows(folder: Path) -> list[dict]:
    path = folder / "test_predictions.csv"
    if not path.is_file():
        raise DataError(f"{path}: missing; --check-test compares with a run folder's stored test predictions (a "
                        f"study's saved models have none)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "sample" not in rows[0]:
        raise DataError(f"{path}: no test rows with a 'sample' column")
    return rows


def _source_options(folder: Path) -> dict:
    """The source options the run read its data with (``metrics.json``), so the samples are numbered alike."""
    try:
        return dict(json.loads((folder / "metrics.json").read_text())["config"].get("source_options") or {})
    except (OSError, ValueError, KeyError, TypeError):
        return {}
