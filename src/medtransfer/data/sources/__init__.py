"""Data sources: MedMNIST files, image folders, CSV manifests (PNG/JPEG/DICOM images), and image + mask pairs.

:func:`open_source` picks the classification source for a path or name; each source module registers itself.
:func:`read_data` reads data for a task, and tells the task from the layout when it is not given.
"""

from __future__ import annotations

import os
from pathlib import Path

from medtransfer.data.sources import csv_manifest, folder, medmnist  # noqa: F401  (registration)
from medtransfer.data.sources.base import (
    SOURCES,
    ImageSet,
    LabelledImages,
    Sample,
    Source,
)
from medtransfer.data.sources.segmentation import (
    SEGMENTATION_SOURCES,
    SegmentedImages,
    open_segmentation_source,
)
from medtransfer.errors import ConfigError, DataError, did_you_mean

__all__ = ["SOURCES", "ImageSet", "LabelledImages", "Sample", "SegmentedImages", "Source", "infer_task", "open_source",
           "read_data", "read_source"]

#: Options that only classification sources take.
_CLASSIFICATION_OPTIONS = ("label_column", "path_column")


def open_source(spec: str | os.PathLike, *, kind: str | None = None, **options) -> Source:
    """The source for ``spec``: a MedMNIST name or ``.npz``, a CSV manifest, or an image folder.

    ``kind`` forces one of :data:`SOURCES`; ``options`` go to that source's constructor.
    """
    spec = str(spec)
    if kind is not None:
        if kind not in SOURCES:
            raise DataError(f"unknown source kind {kind!r}; choose one of {', '.join(SOURCES)}")
        return SOURCES[kind](spec, **options)
    for cls in SOURCES.values():
        if cls.can_open(spec):
            return cls(spec, **options)
    if not Path(spec).exists():
        from medmnist import INFO

        hint = did_you_mean(spec.lower(), INFO) or " (e.g. 'breastmnist')"
        raise DataError(f"{spec}: no such file or folder, and not a MedMNIST dataset name{hint}.")
    raise DataError(
        f"{spec}: cannot tell how to read this. Give a MedMNIST .npz, a CSV manifest (path,label[,split,patient_id]) "
        f"or a folder laid out as <class>/<image> or <split>/<class>/<image>."
    )


def read_source(spec: str | os.PathLike, **options) -> LabelledImages:
    """Open and read ``spec`` in one step."""
    return open_source(spec, **options).read()


def infer_task(spec: str | os.PathLike) -> str:
    """``"segmentation"`` if ``spec`` is laid out as image + mask pairs, else ``"classification"``."""
    return "segmentation" if any(c.can_open(str(spec)) for c in SEGMENTATION_SOURCES.values()) else "classification"


def read_data(spec: str | os.PathLike, *, task: str = "auto", **options) -> ImageSet:
    """Read ``spec`` for ``task`` (``classification``, ``segmentation`` or ``auto``)."""
    if task == "auto":
        task = infer_task(spec)
    if task == "segmentation":
        wrong = [k for k in _CLASSIFICATION_OPTIONS if options.get(k) is not None]
        if wrong:
            raise ConfigError(f"{', '.join(wrong)}: options of classification sources; {spec} is segmentation data")
        options = {k: v for k, v in options.items() if k not in _CLASSIFICATION_OPTIONS}
        return open_segmentation_source(spec, **options).read()
    if task != "classification":
        raise ConfigError(f"unknown task {task!r}; choose classification, segmentation or auto")
    return read_source(spec, **options)
