"""Data sources: MedMNIST files, image folders, CSV manifests (PNG/JPEG/DICOM images), image + mask pairs, and
images with boxes (Pascal VOC, COCO, box CSV).

Every source registers itself in :data:`SOURCES`; :func:`open_source` picks the first of a list of sources (a task's,
or all of them) that recognises a path or name. Which task a data set is for is the tasks' business
(:func:`medtransfer.tasks.detect_task`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from pathlib import Path

from medtransfer.data.sources import (  # noqa: F401  (registration)
    boxes,
    csv_manifest,
    folder,
    mask_sources,
    medmnist,
    nifti_slices,
)
from medtransfer.data.sources.base import (
    SOURCES,
    ImageSet,
    LabelledImages,
    Sample,
    Source,
)
from medtransfer.data.sources.mask_pairs import MaskedImages
from medtransfer.errors import ConfigError, DataError, did_you_mean

__all__ = ["SOURCES", "ImageSet", "LabelledImages", "MaskedImages", "Sample", "Source", "open_source", "read_source"]


def open_source(spec: str | os.PathLike, *, kind: str | None = None, sources: Iterable[type[Source]] | None = None,
                layouts: str = "", purpose: str = "", **options) -> Source:
    """The first of ``sources`` (default: every registered source) that recognises ``spec``.

    ``kind`` forces one of them by name; ``options`` go to its constructor, and an option it does not take is an
    error (options left at ``None`` are dropped). ``layouts`` says in words what the sources read, for the error
    when none recognises ``spec``, and ``purpose`` what they are read for (e.g. a task's name).
    """
    spec = str(spec)
    candidates = list(sources) if sources is not None else list(SOURCES.values())
    options = {k: v for k, v in options.items() if v is not None}
    if kind is not None:
        by_kind = {c.kind: c for c in candidates}
        if kind not in by_kind:
            raise ConfigError(f"unknown source kind {kind!r}{did_you_mean(kind, by_kind)}; choose one of "
                              f"{', '.join(by_kind)}")
        return _construct(by_kind[kind], spec, options)
    for cls in candidates:
        if cls.can_open(spec):
            return _construct(cls, spec, options)
    if not Path(spec).expanduser().exists():
        hint = next((h for h in (c.hint(spec) for c in candidates) if h), "")
        raise DataError(f"{spec}: no such file or folder{hint}.")
    what = f" as {purpose} data" if purpose else ""
    raise DataError(f"{spec}: cannot tell how to read this{what}." + (f" Give {layouts}." if layouts else ""))


def _construct(cls: type[Source], spec: str, options: dict) -> Source:
    accepted = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        wrong = sorted(k for k in options if k not in accepted)
        if wrong:
            raise ConfigError(f"{spec}: the {cls.kind} source does not take the option(s) {', '.join(wrong)}")
    return cls(spec, **options)


def read_source(spec: str | os.PathLike, **options) -> ImageSet:
    """Open and read ``spec`` in one step."""
    return open_source(spec, **options).read()
