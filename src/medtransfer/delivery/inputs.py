"""New, unlabelled images for a saved model: where they are (a file, a folder, a CSV of paths) and how each is read
and preprocessed exactly as the model's training images were.

A NIfTI volume (for segmentation models) is read as its training volumes were: scaled to ``uint8`` by the model's
window or the volume's own min–max, then sliced along the model's axis (2 unless it was trained with another); each
slice is one image.

Every image goes through the readers the sources use (:func:`~medtransfer.data.sources.image_files.read_image_file`:
PNG, JPEG, TIFF, BMP, DICOM with its rescale, VOI LUT or window and MONOCHROME1 inversion), then to the channels the
model was trained on, then :func:`~medtransfer.data.transforms.resize_image` to its input size. Only pixel values
are read from a DICOM file; no header value is kept.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medtransfer.data.sources.image_files import is_image_file, read_image_file
from medtransfer.data.volumes import is_nifti, load_volume_with_geometry, volume_to_uint8
from medtransfer.data.sources.special_files import is_special_file, refuse_special_file
from medtransfer.data.transforms import resize_image
from medtransfer.errors import DataError

#: column names a CSV of paths may use, first match wins (else its first column)
PATH_COLUMNS = ("path", "image", "file", "filename")
#: ITU-R 601-2 luma weights (R, G, B): a colour image for a model trained on gray ones
LUMA = (0.299, 0.587, 0.114)


@dataclass
class Volume:
    """A NIfTI volume that was read as slices: where it is and its geometry, for the mask volume written back."""

    path: str
    shape: tuple[int, int, int]
    axis: int  # the axis it was sliced along
    affine: np.ndarray  # 4×4 voxel → world
    zooms: tuple[float, float, float]  # voxel size, mm


@dataclass
class NewImage:
    """One readable input: the path as given, its pixels at their own size, and the model's input tensor; a slice of
    a NIfTI volume also says which volume and which slice."""

    path: str
    pixels: np.ndarray  # uint8 H×W or H×W×3, as read
    tensor: torch.Tensor  # uint8 C×S×S, as the model takes it
    volume: Volume | None = None
    index: int = 0  # the slice's index along volume.axis
    to_gray: bool = False  # a colour image converted to gray for a model trained on gray ones

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image as read."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def input_paths(spec: str | os.PathLike) -> list[str]:
    """The image paths ``spec`` names: itself (an image file), the image files in a folder and its subfolders
    (sorted; hidden files and files of other types are skipped), or the paths in a CSV (its ``path`` column, else
    its first; relative to the CSV's folder). Paths are returned as given (folder + relative name)."""
    p = Path(spec)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder. Give an image, a folder of images or a CSV of image paths.")
    if p.is_dir():
        found = [str(f) for f in sorted(p.rglob("*"))
                 if (f.is_file() or is_special_file(f))  # a named pipe is listed in errors.csv, never read
                 and not any(part.startswith(".") for part in f.relative_to(p).parts)
                 and (is_image_file(f) or is_nifti(f))]
        if not found:
            raise DataError(f"{p}: holds no image files (PNG, JPEG, TIFF, BMP, DICOM or NIfTI). Point to the folder "
                            f"that holds them.")
        return found
    if p.suffix.lower() == ".csv":
        return _csv_paths(p)
    return [str(p)]


def _csv_paths(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV ({e}). Give one image path per row under a 'path' header.") from None
    if len(rows) < 2:
        raise DataError(f"{path}: no image paths; give a header ('path') and one image path per row.")
    header = [h.strip().lower() for h in rows[0]]
    col = next((header.index(c) for c in PATH_COLUMNS if c in header), 0)
    out = []
    for row in rows[1:]:
        if len(row) > col and row[col].strip():
            given = Path(row[col].strip())
            out.append(str(given if given.is_absolute() else path.parent / given))
    return out


def read_new_images(path: str, spec: dict, *, volumes: bool = False) -> list[NewImage]:
    """``path`` read and preprocessed for the model ``spec`` (a ``model.json``) describes: one image, or every slice
    of a NIfTI volume (for a model whose task predicts ``volumes``). Raises
    :class:`~medtransfer.errors.DataError` naming the file when it cannot be read."""
    refuse_special_file(path)  # listed in errors.csv like any unreadable file, never a read that blocks
    if not is_nifti(Path(path)):
        return [read_new_image(path, spec)]
    if not volumes:
        raise DataError(f"{path}: a NIfTI volume; only segmentation models predict volumes (slice by slice). Give "
                        f"this model 2D images.")
    window, axis = spec.get("window"), int(spec.get("axis", 2))
    data, affine, zooms = load_volume_with_geometry(Path(path))
    scaled = volume_to_uint8(data, tuple(window) if window else None, path)
    volume = Volume(path, tuple(int(n) for n in data.shape), axis, affine, zooms)
    return [_prepared(f"{path}[axis={axis}][{i}]", np.ascontiguousarray(np.take(scaled, i, axis=axis)), spec, volume, i)
            for i in range(data.shape[axis])]


def read_new_image(path: str, spec: dict) -> NewImage:
    """``path`` (a 2D image file) read and preprocessed for the model ``spec`` (a ``model.json``) describes; raises
    :class:`~medtransfer.errors.DataError` naming the file when it cannot be read."""
    window = spec.get("window")
    return _prepared(path, read_image_file(path, window=tuple(window) if window else None), spec)


def _prepared(path: str, pixels: np.ndarray, spec: dict, volume: Volume | None = None, index: int = 0) -> NewImage:
    channels = spec.get("channels")
    to_gray = channels == 1 and pixels.ndim == 3
    if to_gray:  # a colour image for a model trained on gray ones: ITU-R 601-2 luma
        pixels = np.round(pixels.astype(np.float64) @ np.array(LUMA)).clip(0, 255).astype(np.uint8)
    tensor = resize_image(pixels, int(spec["input_size"]))
    if channels == 3 and tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return NewImage(path, pixels, tensor, volume, index, to_gray)


def batch_tensor(images: list[NewImage]) -> torch.Tensor:
    """The images' tensors as one ``uint8`` ``B×C×S×S`` batch (gray ones repeated when others are colour)."""
    c = max(im.tensor.shape[0] for im in images)
    return torch.stack([im.tensor.expand(c, -1, -1) for im in images])
