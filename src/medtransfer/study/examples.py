"""The example test images a study stores for its report, with their targets and references: one ``.npz`` blob in
the study's store (no pickle), written when the study reads its data and read by the report, which then needs neither
the data nor the task's source again."""

from __future__ import annotations

import io
import json

import numpy as np

#: the key of the example test images (and their targets) in the store's blobs
EXAMPLES = "examples"


def encode_examples(images: np.ndarray, targets, refs: list[str]) -> bytes:
    """The report's example images as one ``.npz`` (no pickle): ``images``, ``targets`` (an array, or JSON text
    when the targets are ragged) and ``refs``."""
    arrays = {"images": np.asarray(images), "refs": np.asarray(refs, dtype=str)}
    items = [t.numpy() if hasattr(t, "numpy") else np.asarray(t) for t in targets]
    try:
        arrays["targets"] = np.stack(items) if items else np.zeros(0)
    except ValueError:  # ragged: one JSON list per image
        arrays["targets_json"] = np.asarray(json.dumps([i.tolist() for i in items]))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def decode_examples(blob: bytes) -> dict:
    """What :func:`encode_examples` wrote: ``images``, ``targets`` (an array, or a list of arrays) and ``refs``."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "targets_json" in out:
        out["targets"] = [np.asarray(t) for t in json.loads(str(out.pop("targets_json")))]
    out["refs"] = [str(r) for r in out["refs"]]
    return out
