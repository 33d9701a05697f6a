"""Intensities onto ``uint8``: the one linear map that image files, DICOM windows and NIfTI volumes all use."""

from __future__ import annotations

import numpy as np


def scale_to_uint8(values: np.ndarray, low: float, width: float) -> np.ndarray:
    """``values`` mapped linearly onto ``uint8``: ``low`` to 0 and ``low + width`` to 255, clipped, then rounded
    (halves to even). All zeros when ``width`` is not positive.

    Computes ``(values - low) / width``, so a window ``(centre, width)`` is ``low = centre - width / 2`` and a range
    ``[lo, hi]`` is ``width = hi - lo``. The arithmetic stays in the dtype of ``values`` if it is floating
    (``float32`` stays ``float32``) and is ``float64`` otherwise.
    """
    a = np.asarray(values)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    low, width = float(low), float(width)  # Python floats: they do not widen a float32 array
    if not width > 0:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.round(np.clip((a - low) / width, 0.0, 1.0) * 255.0).astype(np.uint8)
