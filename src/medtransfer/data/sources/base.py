"""The one interface every data source implements.

A source reads the user's files and yields :class:`Sample` records: an image loader, a target, an optional split and
an optional patient id. It knows nothing about models or training. Images come back as ``uint8`` arrays, ``H×W``
(gray) or ``H×W×3`` (RGB), already windowed/rescaled where the format needs it (DICOM).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from medtransfer.data.intensity import scale_to_uint8
from medtransfer.errors import DataError

LabelKind = Literal["binary", "multiclass", "multilabel"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    ``target`` is a class index for binary/multi-class data and a 0/1 vector for multi-label data. ``ref`` names
    where the image came from (a path, or ``file.npz[train][12]``) and is used in error messages only.
    """

    ref: str
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    target: int | tuple[int, ...]
    split: str | None = None
    patient_id: str | None = None


@dataclass
class ImageSet:
    """What a source produces: the samples plus what they mean. Each task's sources return a subclass that adds
    what its targets need (:class:`LabelledImages`, :class:`~medtransfer.data.sources.mask_pairs.MaskedImages`)."""

    samples: list
    class_names: list[str]
    name: str
    modality: str | None = None
    description: str = ""
    official_split: bool = False  # the source's split is a published benchmark split, kept as it is
    notices: list[str] = field(default_factory=list)  # what the audits found but kept (see data/audit.py)
    #: what :meth:`class_counts` counts, in the split audit's messages
    counted = "images"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, indices) -> np.ndarray | None:
        """The examples of each class among ``samples[indices]``, for the audit that every class has training
        examples (:func:`~medtransfer.data.splits.check_split`); None where a class may be absent by nature (a
        segmentation class from an image's mask)."""
        return None

    def strata(self) -> np.ndarray:
        """One code per sample for stratified splits; by default one stratum (splits are grouped, not stratified)."""
        return np.zeros(len(self.samples), dtype=np.int64)


@dataclass(kw_only=True)
class LabelledImages(ImageSet):
    """Images with one label each (or a 0/1 vector for multi-label)."""

    samples: list[Sample]
    label_kind: LabelKind

    def targets(self) -> np.ndarray:
        """Targets as an array: ``(N,)`` of class indices, or ``(N, C)`` 0/1 for multi-label."""
        return np.asarray([s.target for s in self.samples], dtype=np.int64)

    def class_counts(self, indices) -> np.ndarray:
        """The images of each class (of each label, when multi-label) among ``samples[indices]``."""
        t = self.targets()[np.asarray(indices, dtype=np.int64)]
        return np.bincount(t, minlength=self.num_classes) if t.ndim == 1 else t.sum(0)

    def strata(self) -> np.ndarray:
        """The class, or the label combination when multi-label."""
        t = self.targets()
        if t.ndim == 1:
            return t
        return np.unique(t, axis=0, return_inverse=True)[1].ravel()


class Source(ABC):
    """Reads one kind of input. Subclasses register themselves in :data:`SOURCES` via :func:`register_source`;
    each task lists the sources it reads (:attr:`medtransfer.tasks.TaskInputs.sources`)."""

    #: short name used on the command line, e.g. ``"medmnist"``.
    kind: str = ""

    @classmethod
    @abstractmethod
    def can_open(cls, spec: str) -> bool:
        """Whether this source recognises ``spec`` (a path or a dataset name)."""

    @abstractmethod
    def read(self) -> ImageSet:
        """Read the images and their targets; raise :class:`~medtransfer.errors.DataError` with file and reason on
        failure."""

    @classmethod
    def hint(cls, spec: str) -> str:
        """A hint for a ``spec`` that names nothing on disk (e.g. a misspelt dataset name), or ``""``."""
        return ""


SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    SOURCES[cls.kind] = cls
    return cls


def to_uint8_image(array: np.ndarray, ref: str) -> np.ndarray:
    """Bring a decoded image to ``uint8`` ``H×W`` or ``H×W×3``; other shapes are a :class:`DataError`."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 4:  # RGBA: drop alpha
        a = a[..., :3]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise DataError(f"{ref}: expected a 2D gray or RGB image, got an array of shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{ref}: the image holds NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    return scale_to_uint8(a, lo, hi - lo)
