"""Decoding DICOM files to display-ready ``uint8`` images.

Gray images go through the modality LUT (Rescale Slope/Intercept), then a window, then a linear map to 0..255, and
MONOCHROME1 is inverted so that high values are bright. The window is, in order of preference: the caller's
``(centre, width)`` (a plain linear map of ``[centre - width/2, centre + width/2]`` in modality units), the header's
VOI LUT Sequence, the header's first Window Center/Width with its VOI LUT Function (LINEAR, the default,
LINEAR_EXACT or SIGMOID, applied by pydicom as PS3.3 C.11.2.1.2-3 define them), the image's min–max. A header window
that the standard does not allow (a width below 1 for LINEAR, not above 0 otherwise) counts as absent.
Colour images (RGB, YBR, PALETTE COLOR) come back as ``H×W×3``. Of a multi-frame file only the middle frame is read.

No header value other than the image-pixel attributes and the transfer syntax is used to decode, and the dataset is
not kept: patient identifiers never leave this module (nor do they appear in error messages). The one exception is
:func:`dicom_patient_id`, which reads the Patient ID (or Study Instance UID) from the header only and returns a salted
one-way hash of it, never the value itself, so that the images of one patient can be kept in one split.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing, pixel_array
from pydicom.uid import UID

from medtransfer.data.sources.base import scale_to_uint8
from medtransfer.data.sources.special_files import is_special_file
from medtransfer.errors import ConfigError, DataError

#: File name suffixes that mark a DICOM file.
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Header attributes that name the patient, in order of preference (the hash of the first non-empty one is the id).
_PATIENT_KEYWORDS = ("PatientID", "StudyInstanceUID")
#: The BLAKE2b personalisation (salt) of the patient-id hash: it ties the hash to this package.
_PATIENT_HASH_KEY = b"medtransfer-pid"

_GDCM = "pip install python-gdcm"
_OBJECT_REPR = re.compile(r" ?<[\w.]+ object at 0x[0-9a-f]+>")
_LIBJPEG = "pip install pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pip install pylibjpeg pylibjpeg-openjpeg"
#: Compressed transfer syntax -> the pip command that installs a pydicom decoder for it.
_DECODER_PACKAGES = {
    uid.JPEGBaseline8Bit: _LIBJPEG,
    uid.JPEGExtended12Bit: _LIBJPEG,
    uid.JPEGLossless: _LIBJPEG,
    uid.JPEGLosslessSV1: _LIBJPEG,
    uid.JPEGLSLossless: "pip install pyjpegls",
    uid.JPEGLSNearLossless: "pip install pyjpegls",
    uid.JPEG2000Lossless: _OPENJPEG,
    uid.JPEG2000: _OPENJPEG,
    uid.HTJ2KLossless: _OPENJPEG,
    uid.HTJ2KLosslessRPCL: _OPENJPEG,
    uid.HTJ2K: _OPENJPEG,
    uid.RLELossless: "pip install pylibjpeg pylibjpeg-rle",
}


def has_dicom_preamble(path: Path) -> bool:
    """Whether ``path`` is a file with the ``DICM`` marker after the 128-byte preamble."""
    if is_special_file(path):  # opening a named pipe blocks until someone writes into it
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_dicom(path: Path, *, window: tuple[float, float] | None = None) -> np.ndarray:
    """The image of a DICOM file as ``uint8`` ``H×W`` (gray) or ``H×W×3`` (colour); see the module docstring.

    ``window=(centre, width)`` is in modality units (e.g. Hounsfield units for CT) and overrides the header.
    Raises :class:`DataError` naming the file for anything that cannot be read or decoded.
    """
    if window is not None:
        check_window(window)
    ds = _read_dataset(path)
    frame = _decode_middle_frame(ds, path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    try:
        if photometric == "PALETTE COLOR":
            rgb = apply_color_lut(frame, ds)
            return _colour_to_uint8(rgb, 8 * rgb.dtype.itemsize)
        if frame.ndim == 3:
            return _colour_to_uint8(frame, int(ds.get("BitsStored", 8) or 8))
        return _gray_to_uint8(frame, ds, window, invert=photometric == "MONOCHROME1")
    except Exception as e:  # malformed LUTs and attributes surface as many exception types
        reason = _one_line(e)
        raise DataError(f"{path}: cannot convert the pixel data to an image ({reason}). Check the file.") from None


def dicom_patient_id(path: Path) -> str | None:
    """A pseudonymous patient id for the DICOM file ``path``, or ``None`` if it has none.

    It is a one-way hash (BLAKE2b, 8 bytes, as 16 hex digits, salted with this package's name) of the header's Patient
    ID or, where that is empty or absent, of its Study Instance UID (a study is then the unit that is kept in one
    split). The clear values are never returned, stored or put in a message. The hash is a pseudonym for grouping,
    not an anonymisation: the salt is public, so a short Patient ID could be found again by trying every value.
    Only the header is read (``stop_before_pixels``), so this is cheap next to decoding the image. A file whose header
    cannot be read gets ``None``: reading its image reports the problem.
    """
    try:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_PATIENT_KEYWORDS))
        except InvalidDicomError:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_PATIENT_KEYWORDS), force=True)
        for keyword in _PATIENT_KEYWORDS:
            value = _header_text(ds.get(keyword))
            if value:
                return _pseudonym(keyword, value)
    except Exception:  # unreadable or malformed headers raise many exception types; the image read reports them
        return None
    return None


def _header_text(value: object) -> str:
    """A header value as text without its padding (spaces, NULs), ``""`` if absent."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip(" \0")


def _pseudonym(keyword: str, value: str) -> str:
    """The salted hash of one header value; ``keyword`` keeps Patient IDs and Study UIDs apart."""
    return hashlib.blake2b(f"{keyword}={value}".encode(), digest_size=8, person=_PATIENT_HASH_KEY).hexdigest()


def check_window(window: tuple[float, float]) -> None:
    """Raise :class:`ConfigError` unless ``window`` is a ``(centre, width)`` pair with a positive width."""
    try:
        centre, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(f"window must be a (centre, width) pair of numbers, got {window!r}") from None
    if not (np.isfinite(centre) and np.isfinite(width) and width > 0):
        raise ConfigError(f"window width must be a positive number, got (centre={centre}, width={width})")


# -- reading -------------------------------------------------------------------------------------------------
def _read_dataset(path: Path) -> Dataset:
    forced = False
    try:
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            # Files written without the 128-byte preamble are still common; accept them if they hold an image.
            forced = True
            ds = pydicom.dcmread(path, force=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file. Check the path.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a DICOM file.") from None
    except Exception as e:  # truncated or corrupt files raise many exception types
        raise DataError(f"{path}: not a readable DICOM file ({_one_line(e)}). Check or re-export the file.") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if forced:
            raise DataError(f"{path}: not a DICOM file (no DICM marker, no image data). Check or re-export the file.")
        raise DataError(
            f"{path}: not a DICOM image (no pixel data; it may be a report, a DICOMDIR or a truncated file). "
            f"Remove it from the dataset or re-export it."
        )
    return ds


def _decode_middle_frame(ds: Dataset, path: Path) -> np.ndarray:
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    tsyntax = _transfer_syntax(ds)
    try:
        arr = pixel_array(ds, index=frames // 2 if frames > 1 else None)
    except Exception as e:  # pydicom raises RuntimeError/NotImplementedError/ValueError/... on decoding failures
        if tsyntax is not None and tsyntax.is_compressed:
            raise DataError(_decoder_message(path, tsyntax, e)) from None
        raise DataError(
            f"{path}: cannot decode the pixel data ({_one_line(e)}). "
            f"The file may be truncated or corrupt; re-export it."
        ) from None
    return np.asarray(arr)


def _transfer_syntax(ds: Dataset) -> UID | None:
    meta = getattr(ds, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(value)) if value else None


def _decoder_message(path: Path, tsyntax: UID, error: Exception) -> str:
    name = tsyntax.name if tsyntax.is_transfer_syntax else f"transfer syntax {tsyntax}"
    reason = _one_line(error)
    install = _DECODER_PACKAGES.get(tsyntax)
    if install is None:
        return (
            f"{path}: pixel data compressed as '{name}', which pydicom cannot decode ({reason}). "
            f"Convert the file to uncompressed DICOM (e.g. 'gdcmconv --raw' or 'dcmdjpeg') or to PNG."
        )
    if "missing dependencies" in reason:
        what = "no installed package can decode it"
    else:
        what = f"decoding failed: {reason}"
    return (
        f"{path}: pixel data compressed as '{name}' and {what}. "
        f"Install a decoder with '{install}' (or '{_GDCM}'), or convert the file to uncompressed DICOM or PNG."
    )


def _one_line(error: Exception) -> str:
    text = " ".join(_OBJECT_REPR.sub("", str(error)).split())
    return text or type(error).__name__


# -- conversion ----------------------------------------------------------------------------------------------
def _gray_to_uint8(frame: np.ndarray, ds: Dataset, window: tuple[float, float] | None, *, invert: bool) -> np.ndarray:
    values = np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("the image holds NaN or infinite values")
    if window is not None:
        centre, width = window
        out = scale_to_uint8(values, centre - width / 2.0, width)
    elif (lut := _voi_lut(values, ds)) is not None:
        mapped, lo, hi = lut
        out = scale_to_uint8(mapped, lo, hi - lo)
    elif (header := _header_window(ds)) is not None:
        out = scale_to_uint8(_windowing(values, *header), 0.0, 1.0)
    else:
        lo, hi = float(values.min()), float(values.max())
        out = scale_to_uint8(values, lo, hi - lo)
    return 255 - out if invert else out


def _voi_lut(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float] | None:
    """The header's first VOI LUT applied to ``values`` by pydicom, with the lowest and highest entry of the LUT (the
    range to map to 0..255), if it has a LUT whose entries are not all equal."""
    seq = ds.get("VOILUTSequence")
    if not seq or seq[0].get("LUTDescriptor") is None or seq[0].get("LUTData") is None:
        return None
    entries, first = int(seq[0].LUTDescriptor[0]) or 2**16, int(seq[0].LUTDescriptor[1])
    table = np.asarray(apply_voi(np.arange(first, first + entries, dtype=np.int64), ds), dtype=np.float64)
    lo, hi = float(table.min()), float(table.max())
    if hi <= lo:
        return None
    mapped = np.asarray(apply_voi(np.rint(values).astype(np.int64), ds), dtype=np.float64)
    return mapped, lo, hi


def _windowing(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """``values`` (modality units) through pydicom's :func:`~pydicom.pixels.apply_windowing`, as 0..1.

    pydicom scales its output to the range of the stored values (``0..2**BitsStored - 1``, signed if
    ``PixelRepresentation`` is 1, then through Rescale Slope/Intercept, or the Modality LUT's range), which would
    only be divided out again here. It is given a header of its own instead: this window, and 1-bit unsigned stored
    values with no rescale, so that its output range is exactly 0..1 whatever the file's bit depth and sign.
    """
    header = Dataset()
    header.PhotometricInterpretation = "MONOCHROME2"
    header.BitsStored = 1
    header.PixelRepresentation = 0
    header.WindowCenter = centre
    header.WindowWidth = width
    header.VOILUTFunction = function
    return apply_windowing(values, header)


def _header_window(ds: Dataset) -> tuple[float, float, str] | None:
    """The first ``(centre, width, function)`` of the header's window, or ``None`` if absent or unusable."""

    def first(keyword: str) -> float | None:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple, MultiValue)):
            value = value[0] if len(value) else None
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    centre, width = first("WindowCenter"), first("WindowWidth")
    if centre is None or width is None or not (np.isfinite(centre) and np.isfinite(width)) or width <= 0:
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in ("LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"  # the default (PS3.3 C.11.2.1.3), also for values the standard does not define
    if function == "LINEAR" and width < 1:
        return None  # PS3.3 C.11.2.1.2.1: a LINEAR window is at least 1 wide
    return centre, width, function


def _colour_to_uint8(rgb: np.ndarray, bits: int) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb
    top = float(2 ** max(1, min(bits, 16)) - 1)
    return scale_to_uint8(rgb.astype(np.float64), 0.0, top)
