"""Reading one image file (PNG, JPEG, BMP, TIFF or DICOM) as a ``uint8`` array.

Every reader of files on disk (image folders, CSV manifests) goes through :func:`read_image_file`, so all of them
accept the same formats and fail with the same messages.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from medtransfer.data.sources.base import scale_to_uint8, to_uint8_image
from medtransfer.data.sources.dicom import (
    DICOM_SUFFIXES,
    check_window,
    dicom_patient_id,
    has_dicom_preamble,
    read_dicom,
)
from medtransfer.data.sources.special_files import is_special_file, refuse_special_file
from medtransfer.errors import DataError

#: Suffixes (lower case) of the files read by Pillow.
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Suffixes (lower case) of every image file this package reads. DICOM files without a suffix are recognised too.
IMAGE_SUFFIXES = PILLOW_SUFFIXES + DICOM_SUFFIXES


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like an image this package reads.

    True for the :data:`IMAGE_SUFFIXES` (any case), and for DICOM files named without a suffix or by a UID (e.g.
    ``IM0001`` or ``1.2.840.113619.2.55``) that carry the ``DICM`` marker.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    if suffix == "" or suffix[1:].isdigit():
        return p.is_file() and has_dicom_preamble(p)
    return False


def read_image_file(path: str | os.PathLike, *, window: tuple[float, float] | None = None) -> np.ndarray:
    """The image in ``path`` as ``uint8``: ``H×W`` for gray, ``H×W×3`` for colour.

    Colour images whose three channels are identical come back as gray. Alpha channels are dropped; palette
    images are expanded; 16-bit and float gray images are min–max scaled, or windowed when ``window=(centre,
    width)`` is given. Only the first frame of a multi-page TIFF is read. DICOM files are decoded as described in
    :mod:`medtransfer.data.sources.dicom` (``window`` overrides the header's window). Raises :class:`DataError`
    naming the file when it is missing, unreadable or not an image.
    """
    p = Path(path)
    if window is not None:
        check_window(window)
    if not p.exists():
        raise DataError(f"{p}: no such file. Check the path (and that the file was not moved or renamed).")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not an image file. Point to the image files inside it.")
    refuse_special_file(p)  # a named pipe would block the read forever
    suffix = p.suffix.lower()
    if _is_dicom(p):
        image = read_dicom(p, window=window)
    elif suffix in PILLOW_SUFFIXES:
        image = _read_with_pillow(p, window)
    else:
        raise DataError(
            f"{p}: not a supported image type ({suffix or 'no suffix'}). "
            f"Convert it to one of {', '.join(IMAGE_SUFFIXES)}, or remove it."
        )
    return _collapse_gray(image)


def image_patient_id(path: str | os.PathLike) -> str | None:
    """The pseudonymous patient id in the header of a DICOM file (a salted hash of its Patient ID, else of its Study
    Instance UID; see :func:`~medtransfer.data.sources.dicom.dicom_patient_id`), or ``None`` for other images and
    for DICOM files with neither. Reads the header only."""
    p = Path(path)
    return dicom_patient_id(p) if _is_dicom(p) and not is_special_file(p) else None


def _is_dicom(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in DICOM_SUFFIXES or (suffix not in PILLOW_SUFFIXES and has_dicom_preamble(path))


def _read_with_pillow(path: Path, window: tuple[float, float] | None) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. truncated-EXIF or palette-transparency warnings
            with Image.open(path) as img:
                img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img)
                array = _pillow_to_array(img)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown format or corrupt header). Re-export it.") from None
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: image too large to read safely ({e}). Downscale it first.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or corrupt data
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot decode the image ({reason}). It may be truncated; re-export it.") from None
    if array.dtype != np.uint8 and array.ndim == 2 and window is not None:
        centre, width = (float(v) for v in window)
        return scale_to_uint8(array.astype(np.float64), centre - width / 2.0, width)
    return to_uint8_image(array, str(path))


def _pillow_to_array(img: Image.Image) -> np.ndarray:
    """Pixel values of ``img`` as gray ``H×W`` or colour ``H×W×3``, keeping more than 8 bits where present."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("L", "RGB"):
        return np.asarray(img)
    if mode == "LA":
        return np.asarray(img.getchannel("L"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        return np.asarray(img)
    if mode in ("P", "PA"):
        return np.asarray(img.convert("RGBA"))[..., :3]
    if mode == "RGBA":
        return np.asarray(img)[..., :3]
    return np.asarray(img.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def _collapse_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        if np.array_equal(r, g) and np.array_equal(g, b):
            return np.ascontiguousarray(r)
    return image
