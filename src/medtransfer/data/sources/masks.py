"""Mask files and their values: reading a mask image, and how its raw values become class indices.

The rules, the same for every image + mask source (:mod:`~medtransfer.data.sources.mask_sources` for folder pairs
and CSV lists, :mod:`~medtransfer.data.sources.nifti_slices` for NIfTI volumes):

* JPEG masks (``.jpg``/``.jpeg``) are lossy, so they are thresholded: values ``>= 128`` are foreground (1);
  they count as binary ``{0, 255}`` masks below.
* If any mask of the data set holds 255 (and no ``class_names`` with more than two classes are given), the masks
  are binary ``{0, 255}`` and become ``{0, 1}``; any other value in such a mask (e.g. 37 from anti-aliasing) is an
  error naming the file and the value.
* Otherwise values are class indices ``0..C-1``. ``C`` is ``len(class_names)`` when given, else the largest value
  seen plus one (at most :data:`MAX_INFERRED_CLASSES`; larger values are taken for gray levels, not classes, and are
  an error). Default names: ``["background", "foreground"]`` for two classes, else ``["background", "class_1", ...]``.
* Palette (``P`` mode) PNGs are read as their palette indices; RGB masks must have three equal channels.

When checked: a source's ``read()`` reads every mask once (to learn the label values and the number of classes) and checks
each mask's size against its image (from the image header, without decoding the pixels, for Pillow formats), so
errors surface before training starts. For NIfTI data the label volumes are read in full and the image volumes'
shapes come from their headers. ``load_mask`` converts the values again and raises the same errors.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medtransfer.data.sources.image_files import PILLOW_SUFFIXES
from medtransfer.data.sources.special_files import refuse_special_file
from medtransfer.errors import ConfigError, DataError

#: Suffixes (lower case) of mask files. DICOM masks are not read.
MASK_SUFFIXES = PILLOW_SUFFIXES
JPEG_SUFFIXES = (".jpg", ".jpeg")
#: Without ``class_names``, mask values above ``MAX_INFERRED_CLASSES - 1`` are an error (gray levels, not classes).
MAX_INFERRED_CLASSES = 32


@dataclass(frozen=True)
class MaskCoding:
    """How raw mask values map to class indices: ``"binary255"`` ({0,255} → {0,1}) or ``"index"`` (0..C-1)."""

    mode: str
    num_classes: int


def default_class_names(num_classes: int) -> list[str]:
    if num_classes <= 2:
        return ["background", "foreground"]
    return ["background"] + [f"class_{i}" for i in range(1, num_classes)]


def class_names_for(coding: MaskCoding, class_names: list[str] | None) -> list[str]:
    """The data set's class names: those given, else the default names for the coding's number of classes."""
    return list(class_names) if class_names is not None else default_class_names(coding.num_classes)


def infer_coding(values_by_ref: Iterable[tuple[str, np.ndarray]], class_names: list[str] | None) -> MaskCoding:
    """The coding of a data set from each mask's distinct raw values (JPEG masks already thresholded to {0, 255})."""
    values_by_ref = list(values_by_ref)
    seen = set()
    for _, values in values_by_ref:
        seen.update(int(v) for v in values)
    if class_names is not None and len(class_names) < 2:
        raise ConfigError(f"class_names {class_names!r}: give at least two names (background first).")
    if 255 in seen and (class_names is None or len(class_names) == 2):
        coding = MaskCoding("binary255", 2)
    elif class_names is not None:
        coding = MaskCoding("index", len(class_names))
    else:
        top = max(seen, default=1)
        if top >= MAX_INFERRED_CLASSES:
            ref = next(r for r, v in values_by_ref if top in set(int(x) for x in v))
            raise DataError(
                f"{ref}: mask value {top} is not a class index (values {_shown(v for r, v in values_by_ref if r == ref)}). "
                f"Masks hold 0/255 (binary) or class indices 0..C-1; re-save gray or anti-aliased masks with exact "
                f"label values, or pass class_names if there really are {top + 1} classes."
            )
        gaps = sorted(set(range(top + 1)) - seen)
        if gaps:  # {0, 1, 7} is not eight classes of which six are never seen
            odd = [v for v in sorted(seen) if v > min(gaps)]
            ref = next(r for r, v in values_by_ref if odd[0] in set(int(x) for x in v))
            raise DataError(
                f"{ref}: mask value {odd[0]} leaves class indices {_shown([gaps])} unused (values in all masks: "
                f"{_shown([sorted(seen)])}); masks hold 0/255 (binary) or class indices 0..C-1 without gaps. Remap the "
                f"values to 0..{len(seen) - 1}, or pass class_names if the missing classes are real."
            )
        coding = MaskCoding("index", max(top + 1, 2))
    for ref, values in values_by_ref:
        check_values(values, coding, ref)
    if values_by_ref and seen <= {0}:
        raise DataError(f"{values_by_ref[0][0]} and the {len(values_by_ref) - 1} other masks hold no foreground at all "
                        f"(every value is 0): there is nothing to learn or to score. Check the mask files.")
    return coding


def check_values(values: np.ndarray, coding: MaskCoding, ref: str) -> None:
    """Raise a :class:`DataError` naming ``ref`` if the distinct ``values`` do not fit ``coding``."""
    values = np.asarray(values)
    if coding.mode == "binary255":
        bad = values[(values != 0) & (values != 255)]
        if bad.size:
            raise DataError(
                f"{ref}: mask value {int(bad[0])} is neither 0 nor 255 (binary masks hold 0 = background, "
                f"255 = foreground). Re-save the mask without anti-aliasing or resizing blur."
            )
    else:
        bad = values[(values < 0) | (values >= coding.num_classes)]
        if bad.size:
            raise DataError(
                f"{ref}: mask value {int(bad[0])} is not a class index 0..{coding.num_classes - 1}. "
                f"Fix the mask, or give class_names naming every class (background first)."
            )


def encode(raw: np.ndarray, coding: MaskCoding, ref: str) -> np.ndarray:
    """Raw mask values → ``uint8`` class indices (checked against ``coding``)."""
    check_values(np.unique(raw), coding, ref)
    if coding.mode == "binary255":
        return (raw == 255).astype(np.uint8)
    return raw.astype(np.uint8)


def read_raw_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file's values as an integer ``H×W`` array (JPEG thresholded at 128 to {0, 255})."""
    p = Path(path)
    refuse_special_file(p)  # a named pipe would block the read forever
    if not p.is_file():
        what = "is a folder, not a mask file" if p.is_dir() else "no such file"
        raise DataError(f"{p}: {what}. Check the mask path.")
    suffix = p.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise DataError(f"{p}: not a supported mask type ({suffix or 'no suffix'}); save masks as PNG.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as img:
                img.seek(0)
                img.load()
                a = _mask_array(img)
    except UnidentifiedImageError:
        raise DataError(f"{p}: not a readable mask image (unknown format or corrupt header). Re-export it.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{p}: cannot decode the mask ({reason}). Re-export it.") from None
    if a.ndim == 3:
        if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])):
            raise DataError(
                f"{p}: colour mask (its R, G, B channels differ). Save masks as single-channel class indices "
                f"(or 0/255 for binary)."
            )
        a = a[..., 0]
    if suffix in JPEG_SUFFIXES:
        return np.where(a >= 128, 255, 0).astype(np.uint8)  # read as a binary {0, 255} mask
    return a.astype(np.int64) if a.dtype != np.uint8 else a


def _mask_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "1":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("L", "P", "RGB") or mode.startswith("I"):
        return np.asarray(img)  # palette masks: the indices themselves are the classes
    if mode in ("LA", "PA"):
        return np.asarray(img.getchannel(0))
    if mode == "RGBA":
        return np.asarray(img)[..., :3]
    raise DataError(f"{getattr(img, 'filename', 'mask')}: unsupported mask pixel mode {mode!r}; save it as 8-bit gray PNG.")


def load_mask_file(path: Path, coding: MaskCoding) -> np.ndarray:
    """The mask in ``path`` as ``uint8`` class indices."""
    return encode(read_raw_mask(path), coding, str(path))


def _shown(values_iter) -> str:
    values = sorted({int(v) for vs in values_iter for v in vs})
    text = ", ".join(map(str, values[:8]))
    return text + (", ..." if len(values) > 8 else "")
