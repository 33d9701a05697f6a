"""NIfTI volume pairs as 2D slices: ``root/images/<stem>.nii[.gz]`` and ``root/labels/<stem>.nii[.gz]``, cut along
``axis``; every slice of one volume gets the volume's stem as ``patient_id``, so that a patient-level split keeps a
volume together. Volumes are not reoriented: slices follow the array axes as stored.

When checked: :meth:`NiftiVolumeSource.read` reads the label volumes in full (to learn the label values, by the
rules of :mod:`~medtransfer.data.sources.masks`) and the image volumes' shapes from their headers.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from medtransfer.data.sources.base import register_source
from medtransfer.data.sources.mask_pairs import MaskedImages, MaskedSample, MaskSource, files_by_stem, matched_stems
from medtransfer.data.sources.masks import MaskCoding, class_names_for, encode, infer_coding
from medtransfer.data.volumes import (
    VolumeCache,
    as_3d,
    header_shape,
    is_nifti,
    load_volume,
    nifti_stem,
    volume_to_uint8,
)
from medtransfer.errors import ConfigError, DataError


def _label_values(data: np.ndarray, path: Path) -> np.ndarray:
    """The distinct values of a label volume as integers; a fractional or non-finite value is an error."""
    values = np.unique(data)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
            bad = values[~np.isfinite(values) | (values != np.round(values))][0]
            raise DataError(f"{path}: label value {bad} is not an integer. Label volumes hold class indices.")
    return values.astype(np.int64)


@register_source
class NiftiVolumeSource(MaskSource):
    """Pairs of NIfTI volumes ``root/images/*.nii[.gz]`` + ``root/labels/*.nii[.gz]``, as 2D slices along ``axis``.

    Image slices are scaled to ``uint8`` by the volume's own min–max, or by ``window=(centre, width)`` when given
    (e.g. ``(40, 400)`` for CT soft tissue). Each slice's ``patient_id`` is the volume's stem.
    """

    kind = "nifti"
    image_dir_name = "images"
    label_dir_name = "labels"

    def __init__(self, root: str | os.PathLike, *, axis: int = 2, class_names: list[str] | None = None,
                 window: tuple[float, float] | None = None, modality: str | None = None, cache_size: int = 4):
        if axis not in (0, 1, 2):
            raise ConfigError(f"axis={axis!r}: choose 0, 1 or 2 (the volume axis to slice along).")
        if window is not None and (len(window) != 2 or not float(window[1]) > 0):
            raise ConfigError(f"window={window!r}: give (centre, width) with a positive width.")
        self.root = Path(root).expanduser()
        self.axis = axis
        self.class_names = list(class_names) if class_names is not None else None
        self.window = window
        self.modality = modality
        self._cache = VolumeCache(cache_size)

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec).expanduser()
        images, labels = p / cls.image_dir_name, p / cls.label_dir_name
        return images.is_dir() and labels.is_dir() and any(is_nifti(f) for f in images.iterdir())

    def read(self) -> MaskedImages:
        image_dir, label_dir = self.root / self.image_dir_name, self.root / self.label_dir_name
        for d in (image_dir, label_dir):
            if not d.is_dir():
                raise DataError(
                    f"{d}: no such folder. A NIfTI data set holds {self.image_dir_name}/ and {self.label_dir_name}/ "
                    f"with .nii or .nii.gz volumes paired by name."
                )
        images = files_by_stem(image_dir, nifti_stem, is_nifti)
        labels = files_by_stem(label_dir, nifti_stem, is_nifti)
        stems = matched_stems(images, labels, image_dir, label_dir)
        found, shapes = [], {}
        for s in stems:
            shape = header_shape(images[s])
            label = as_3d(self._volume(labels[s]), labels[s])
            if tuple(label.shape) != shape:
                raise DataError(
                    f"{labels[s]}: label volume shape {tuple(label.shape)} differs from its image {images[s]} "
                    f"{shape}. Labels must match their images voxel for voxel."
                )
            shapes[s] = shape
            found.append((str(labels[s]), _label_values(label, labels[s])))
        coding = infer_coding(found, self.class_names)
        samples = []
        for s in stems:
            for i in range(shapes[s][self.axis]):
                samples.append(
                    MaskedSample(
                        ref=f"{images[s]}[axis={self.axis}][{i}]",
                        load_image=partial(self._image_slice, images[s], i),
                        load_mask=partial(self._label_slice, labels[s], i, coding),
                        split=None,
                        patient_id=s,
                        mask_ref=f"{labels[s]}[axis={self.axis}][{i}]",
                    )
                )
        return MaskedImages(
            samples=samples,
            class_names=class_names_for(coding, self.class_names),
            name=self.root.name,
            modality=self.modality,
            description=f"{len(samples)} slices (axis {self.axis}) of {len(stems)} NIfTI volumes in {self.root.name}",
        )

    def _volume(self, path: Path) -> np.ndarray:
        return self._cache.get((str(path), "raw"), partial(load_volume, path))

    def _scaled(self, path: Path) -> np.ndarray:
        return self._cache.get((str(path), "uint8"), lambda: volume_to_uint8(self._volume(path), self.window, path))

    def _image_slice(self, path: Path, index: int) -> np.ndarray:
        return np.ascontiguousarray(np.take(self._scaled(path), index, axis=self.axis))

    def _label_slice(self, path: Path, index: int, coding: MaskCoding) -> np.ndarray:
        raw = np.take(self._volume(path), index, axis=self.axis)
        raw = np.round(raw).astype(np.int64) if raw.dtype.kind == "f" else raw.astype(np.int64)
        return np.ascontiguousarray(encode(raw, coding, f"{path}[axis={self.axis}][{index}]"))
