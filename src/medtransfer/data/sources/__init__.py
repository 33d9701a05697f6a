"""Data sources: MedMNIST files, image folders, CSV manifests (PNG/JPEG/DICOM images).

:func:`open_source` picks the source for a path or name; each source module registers itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from medtransfer.data.sources import csv_manifest, folder, medmnist  # noqa: F401  (registration)
from medtransfer.data.sources.base import SOURCES, LabelledImages, Sample, Source
from medtransfer.errors import DataError, did_you_mean

__all__ = ["SOURCES", "LabelledImages", "Sample", "Source", "open_source", "read_source"]


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
