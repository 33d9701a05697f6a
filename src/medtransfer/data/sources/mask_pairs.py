"""Images paired with their masks: the sample and data set that every image + mask source returns, and the pieces
of pairing files: by stem, with each mask checked against its image's size before training starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medtransfer.data.sources.base import ImageSet, Source
from medtransfer.data.sources.image_files import PILLOW_SUFFIXES, read_image_file
from medtransfer.data.sources.masks import MaskCoding, infer_coding, load_mask_file, read_raw_mask
from medtransfer.data.sources.special_files import refuse_special_file
from medtransfer.errors import DataError


@dataclass(frozen=True)
class MaskedSample:
    """One image and its mask.

    ``load_image`` gives ``uint8`` ``H×W`` or ``H×W×3``; ``load_mask`` gives ``uint8`` ``H×W`` class indices
    (``0`` = background). ``ref`` names the image (a path, or ``volume.nii.gz[axis=2][17]``), ``mask_ref`` the mask;
    both are for messages only.
    """

    ref: str
    load_image: Callable[[], np.ndarray] = field(repr=False, compare=False)
    load_mask: Callable[[], np.ndarray] = field(repr=False, compare=False)
    split: str | None = None
    patient_id: str | None = None
    mask_ref: str = ""

    @property
    def load(self) -> Callable[[], np.ndarray]:
        """The image loader, under the name every sample uses."""
        return self.load_image


@dataclass(kw_only=True)
class MaskedImages(ImageSet):
    """Images with a mask each; ``class_names`` say what the mask values mean (background first). Splits are
    grouped by patient (volume) but not stratified."""

    samples: list[MaskedSample]


class MaskSource(Source):
    """Reads one layout of image + mask pairs: ``read()`` returns :class:`MaskedImages`."""


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image, from the header for Pillow formats (full decode otherwise)."""
    refuse_special_file(path)
    if path.suffix.lower() in PILLOW_SUFFIXES:
        try:
            with Image.open(path) as img:
                w, h = img.size
            return h, w
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            pass  # let the full reader give its message
    a = read_image_file(path)
    return int(a.shape[0]), int(a.shape[1])


def check_size(mask_shape: tuple[int, ...], size: tuple[int, int], mask_ref: str, image_ref: str) -> None:
    if tuple(mask_shape[:2]) != tuple(size):
        raise DataError(
            f"{mask_ref}: mask size {mask_shape[0]}×{mask_shape[1]} differs from its image {image_ref} "
            f"({size[0]}×{size[1]}, H×W). Masks must match their images pixel for pixel."
        )


def scan_pairs(pairs: list[tuple[Path, Path, str]], class_names: list[str] | None) -> MaskCoding:
    """Read every mask once: check its size against its image and learn the coding. ``pairs``: image, mask, where."""
    found = []
    for image, mask, where in pairs:
        try:
            raw = read_raw_mask(mask)
            check_size(raw.shape, image_size(image), str(mask), str(image))
        except DataError as e:
            raise DataError(f"{where}{e}") from None
        found.append((f"{where}{mask}", np.unique(raw)))
    return infer_coding(found, class_names)


def pair_samples(pairs, coding, window, splits=None, patients=None) -> list[MaskedSample]:
    n = len(pairs)
    splits = splits or [None] * n
    patients = patients or [None] * n
    return [
        MaskedSample(
            ref=str(image),
            load_image=partial(read_image_file, image, window=window),
            load_mask=partial(load_mask_file, mask, coding),
            split=split,
            patient_id=patient,
            mask_ref=str(mask),
        )
        for (image, mask, _), split, patient in zip(pairs, splits, patients)
    ]


def files_by_stem(folder: Path, stem_of: Callable[[Path], str], accept: Callable[[Path], bool]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir() or not accept(p):  # a named pipe is paired, then refused
            continue
        stem = stem_of(p)
        if stem in out:
            raise DataError(
                f"{folder}: two files share the stem {stem!r} ({out[stem].name}, {p.name}); pairing is by stem. "
                f"Rename or remove one."
            )
        out[stem] = p
    return out


def matched_stems(images: dict[str, Path], masks: dict[str, Path], image_dir: Path, mask_dir: Path) -> list[str]:
    """The stems present in both; unmatched files on either side are a :class:`DataError`."""
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    for lonely, files, other in ((lonely_images, images, mask_dir), (lonely_masks, masks, image_dir)):
        if lonely:
            shown = ", ".join(files[s].name for s in lonely[:3]) + (", ..." if len(lonely) > 3 else "")
            raise DataError(
                f"{files[lonely[0]].parent}: {len(lonely)} file(s) without a partner of the same stem in {other} "
                f"({shown}). Images and masks are paired by file name without extension; add or remove files."
            )
    stems = sorted(set(images) & set(masks))
    if not stems:
        raise DataError(f"{image_dir}: no images found. Put image files in {image_dir} and masks in {mask_dir}.")
    return stems
