"""NIfTI volumes: their voxels with the affine and voxel size, their shape from the header, their intensities on
``uint8``, and a small cache of decoded volumes.

The one place that reads volumes: the NIfTI source (:mod:`~medtransfer.data.sources.nifti_slices`) and ``predict``
(:mod:`~medtransfer.delivery.inputs`) both go through it. Volumes are not reoriented: the arrays keep the axes as
stored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medtransfer.data.intensity import scale_to_uint8
from medtransfer.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def nifti_stem(path: Path) -> str:
    """The file name without ``.nii`` or ``.nii.gz``: the name that pairs an image volume with its labels."""
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_nifti(path: Path) -> bool:
    """Whether the file name says NIfTI (``.nii`` or ``.nii.gz``, any case)."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


class VolumeCache:
    """The last few decoded volumes (slices of one volume are usually loaded together)."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, str], make: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def load_volume(path: Path) -> np.ndarray:
    """A NIfTI volume's voxels (3D, as stored)."""
    return load_volume_with_geometry(path)[0]


def load_volume_with_geometry(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A NIfTI volume's voxels (3D, as stored), its affine (voxel → world, 4×4) and its voxel size (mm)."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        affine, zooms = np.asarray(image.affine, dtype=np.float64), tuple(float(z) for z in image.header.get_zooms()[:3])
    except Exception as e:  # nibabel raises many kinds (ImageFileError, OSError, EOFError, zlib errors)
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read the NIfTI volume ({reason}). Re-export it.") from None
    return as_3d(data, path), affine, zooms


def volume_to_uint8(volume: np.ndarray, window: tuple[float, float] | None, path) -> np.ndarray:
    """A volume's intensities on ``uint8``: by ``window=(centre, width)`` when given, else by the volume's own
    min–max (one scale for all its slices)."""
    v = np.asarray(volume).astype(np.float32)
    if not np.isfinite(v).all():
        raise DataError(f"{path}: the volume holds NaN or infinite values.")
    if window is not None:
        centre, width = (float(x) for x in window)
        lo, hi = centre - width / 2.0, centre + width / 2.0
    else:
        lo, hi = float(v.min()), float(v.max())
    return scale_to_uint8(v, lo, hi - lo)


def as_3d(data: np.ndarray, path: Path) -> np.ndarray:
    """``data`` without trailing axes of length 1; anything but 3D then is a :class:`DataError` naming ``path``."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {tuple(data.shape)}. Split 4D series first.")
    return data


def header_shape(path: Path) -> tuple[int, ...]:
    """A NIfTI volume's 3D shape, from its header alone (the voxels are not read)."""
    import nibabel as nib

    try:
        shape = tuple(int(s) for s in nib.load(str(path)).shape)
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read the NIfTI header ({reason}). Re-export it.") from None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {shape}. Split 4D series first.")
    return shape
