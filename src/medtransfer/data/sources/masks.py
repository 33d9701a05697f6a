"""Sources of image + mask pairs (the segmentation task's; detection derives boxes from them too).

They register in :data:`~medtransfer.data.sources.base.SOURCES` like every source. Three layouts are read:

* :class:`MaskFolderSource` — ``root/images/<stem>.<ext>`` and ``root/masks/<stem>[suffix].<ext>``, paired by file
  stem (the mask's extension may differ from the image's; only files directly in the two folders are read).
* :class:`MaskCsvSource` — a CSV with columns ``image,mask[,split,patient_id]`` (paths relative to the CSV's
  folder, or absolute). Line numbers in messages count the header as line 1.
* :class:`NiftiVolumeSource` — ``root/images/<stem>.nii[.gz]`` and ``root/labels/<stem>.nii[.gz]``, cut into 2D
  slices along ``axis``; every slice of one volume gets the volume's stem as ``patient_id``, so that a patient-level
  split keeps a volume together. Volumes are not reoriented: slices follow the array axes as stored.

Mask rules (the same for every source):

* JPEG masks (``.jpg``/``.jpeg``) are lossy, so they are thresholded: values ``>= 128`` are foreground (1);
  they count as binary ``{0, 255}`` masks below.
* If any mask of the data set holds 255 (and no ``class_names`` with more than two classes are given), the masks
  are binary ``{0, 255}`` and become ``{0, 1}``; any other value in such a mask (e.g. 37 from anti-aliasing) is an
  error naming the file and the value.
* Otherwise values are class indices ``0..C-1``. ``C`` is ``len(class_names)`` when given, else the largest value
  seen plus one (at most :data:`MAX_INFERRED_CLASSES`; larger values are taken for gray levels, not classes, and are
  an error). Default names: ``["background", "foreground"]`` for two classes, else ``["background", "class_1", ...]``.
* Palette (``P`` mode) PNGs are read as their palette indices; RGB masks must have three equal channels.

When checked: :meth:`read` reads every mask once (to learn the label values and the number of classes) and checks
each mask's size against its image (from the image header, without decoding the pixels, for Pillow formats), so
errors surface before training starts. For NIfTI data the label volumes are read in full and the image volumes'
shapes come from their headers. ``load_mask`` converts the values again and raises the same errors.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medtransfer.data.sources.base import SPLITS, ImageSet, Source, register_source
from medtransfer.data.sources.folder import SPLIT_ALIASES, canonical_split
from medtransfer.data.sources.image_files import (
    PILLOW_SUFFIXES,
    is_image_file,
    read_image_file,
)
from medtransfer.data.sources.special_files import is_special_file, refuse_special_file
from medtransfer.errors import ConfigError, DataError, did_you_mean

#: Suffixes (lower case) of mask files. DICOM masks are not read.
MASK_SUFFIXES = PILLOW_SUFFIXES
JPEG_SUFFIXES = (".jpg", ".jpeg")
#: Without ``class_names``, mask values above ``MAX_INFERRED_CLASSES - 1`` are an error (gray levels, not classes).
MAX_INFERRED_CLASSES = 32
NIFTI_SUFFIXES = (".nii.gz", ".nii")


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


# -- mask values -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskCoding:
    """How raw mask values map to class indices: ``"binary255"`` ({0,255} → {0,1}) or ``"index"`` (0..C-1)."""

    mode: str
    num_classes: int


def default_class_names(num_classes: int) -> list[str]:
    if num_classes <= 2:
        return ["background", "foreground"]
    return ["background"] + [f"class_{i}" for i in range(1, num_classes)]


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


def _shown(values_iter) -> str:
    values = sorted({int(v) for vs in values_iter for v in vs})
    text = ", ".join(map(str, values[:8]))
    return text + (", ..." if len(values) > 8 else "")


def _scan_pairs(pairs: list[tuple[Path, Path, str]], class_names: list[str] | None) -> MaskCoding:
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


def _pair_samples(pairs, coding, window, splits=None, patients=None) -> list[MaskedSample]:
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


def _names(coding: MaskCoding, class_names: list[str] | None) -> list[str]:
    return list(class_names) if class_names is not None else default_class_names(coding.num_classes)


def _files_by_stem(folder: Path, stem_of: Callable[[Path], str], accept: Callable[[Path], bool]) -> dict[str, Path]:
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


def _match(images: dict[str, Path], masks: dict[str, Path], image_dir: Path, mask_dir: Path) -> list[str]:
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


# -- sources -----------------------------------------------------------------------------------------------------
@register_source
class MaskFolderSource(MaskSource):
    """``root/images/*`` and ``root/masks/*`` paired by file stem.

    ``mask_suffix`` is an extra ending of mask stems (e.g. ``"_mask"`` for ``a.png`` ↔ ``a_mask.png``).
    ``class_names`` fixes the classes (background first); ``window=(centre, width)`` goes to the image reader.
    """

    kind = "mask-folder"
    image_dir_name = "images"
    mask_dir_name = "masks"

    def __init__(self, root: str | os.PathLike, *, class_names: list[str] | None = None, mask_suffix: str = "",
                 window: tuple[float, float] | None = None, modality: str | None = None):
        self.root = Path(root).expanduser()
        self.class_names = list(class_names) if class_names is not None else None
        self.mask_suffix = mask_suffix
        self.window = window
        self.modality = modality

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec).expanduser()
        return (p / cls.image_dir_name).is_dir() and (p / cls.mask_dir_name).is_dir()

    def read(self) -> MaskedImages:
        image_dir, mask_dir = self.root / self.image_dir_name, self.root / self.mask_dir_name
        for d in (image_dir, mask_dir):
            if not d.is_dir():
                raise DataError(
                    f"{d}: no such folder. A mask folder holds {self.image_dir_name}/ and {self.mask_dir_name}/ "
                    f"with files paired by name."
                )
        images = _files_by_stem(image_dir, lambda p: p.stem, is_image_file)
        masks = _files_by_stem(mask_dir, self._mask_stem, lambda p: p.suffix.lower() in MASK_SUFFIXES)
        stems = _match(images, masks, image_dir, mask_dir)
        pairs = [(images[s], masks[s], "") for s in stems]
        coding = _scan_pairs(pairs, self.class_names)
        return MaskedImages(
            samples=_pair_samples(pairs, coding, self.window),
            class_names=_names(coding, self.class_names),
            name=self.root.name,
            modality=self.modality,
            description=f"{len(pairs)} image/mask pairs in {self.root.name}",
        )

    def _mask_stem(self, p: Path) -> str:
        stem = p.stem
        if self.mask_suffix and stem.endswith(self.mask_suffix):
            return stem[: -len(self.mask_suffix)]
        return stem


@register_source
class MaskCsvSource(MaskSource):
    """Image/mask pairs listed in a CSV with columns ``image``, ``mask`` and optionally ``split``, ``patient_id``."""

    kind = "mask-csv"
    columns_required = ("image", "mask")

    def __init__(self, csv_path: str | os.PathLike, *, class_names: list[str] | None = None,
                 window: tuple[float, float] | None = None, modality: str | None = None):
        self.csv_path = Path(csv_path).expanduser()
        self.class_names = list(class_names) if class_names is not None else None
        self.window = window
        self.modality = modality

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec).expanduser()
        if not (p.suffix.lower() == ".csv" and p.is_file()):
            return False
        try:
            with open(p, encoding="utf-8-sig") as f:
                header = f.readline()
        except (OSError, UnicodeDecodeError):
            return False
        names = {h.strip() for h in header.replace(";", ",").replace("\t", ",").split(",")}
        return set(cls.columns_required) <= names

    def read(self) -> MaskedImages:
        from medtransfer.data.sources.csv_manifest import CsvManifestSource

        where = self.csv_path
        columns, rows = CsvManifestSource(where)._read_rows()  # same parsing and messages as the classification CSV
        for col in self.columns_required:
            if col not in columns:
                raise DataError(
                    f"{where}, line 1: no {col!r} column{did_you_mean(col, columns)} (columns: {', '.join(columns)}). "
                    f"A segmentation CSV has columns image,mask[,split,patient_id]."
                )
        pairs, splits, patients = [], [], []
        for row in rows:
            prefix = f"{where}, line {row.line}: "
            paths = []
            for col in self.columns_required:
                cell = row.cells[col].strip()
                if not cell:
                    raise DataError(f"{prefix}empty {col!r} cell. Fill in the {col} path or delete the line.")
                p = Path(cell).expanduser()
                p = p if p.is_absolute() else where.parent / p
                if not p.is_file() and not is_special_file(p):  # a named pipe is refused when read
                    raise DataError(
                        f"{prefix}{col} {cell!r} not found (looked for {p}). "
                        f"Fix the path; relative paths are relative to the CSV's folder."
                    )
                paths.append(p)
            pairs.append((paths[0], paths[1], prefix))
            splits.append(self._split(row, columns, prefix))
            patients.append(row.cells.get("patient_id", "").strip() or None)
        coding = _scan_pairs(pairs, self.class_names)
        return MaskedImages(
            samples=_pair_samples(pairs, coding, self.window, splits, patients),
            class_names=_names(coding, self.class_names),
            name=where.stem,
            modality=self.modality,
            description=f"{len(pairs)} image/mask pairs listed in {where.name}",
        )

    @staticmethod
    def _split(row, columns: list[str], prefix: str) -> str | None:
        if "split" not in columns:
            return None
        cell = row.cells["split"].strip()
        if not cell:
            return None
        split = canonical_split(cell)
        if split is None:
            raise DataError(
                f"{prefix}unknown split {cell!r}{did_you_mean(cell.lower(), SPLIT_ALIASES)} in column 'split'; "
                f"allowed: {', '.join(SPLITS)} (or valid, validation), or empty."
            )
        return split


def nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


class _VolumeCache:
    """The last few decoded volumes (slices of one volume are usually loaded together)."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, str], make: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def load_volume(path: Path) -> np.ndarray:
    return load_volume_with_geometry(path)[0]


def load_volume_with_geometry(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A NIfTI volume's voxels (3D, as stored), its affine (voxel → world, 4×4) and its voxel size (mm)."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        affine, zooms = np.asarray(image.affine, dtype=np.float64), tuple(float(z) for z in image.header.get_zooms()[:3])
    except Exception as e:  # nibabel raises many kinds (ImageFileError, OSError, EOFError, zlib errors)
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read the NIfTI volume ({reason}). Re-export it.") from None
    return _as_3d(data, path), affine, zooms


def volume_to_uint8(volume: np.ndarray, window: tuple[float, float] | None, path) -> np.ndarray:
    """A volume's intensities on ``uint8``: by ``window=(centre, width)`` when given, else by the volume's own
    min–max (one scale for all its slices)."""
    from medtransfer.data.sources.base import scale_to_uint8

    v = np.asarray(volume).astype(np.float32)
    if not np.isfinite(v).all():
        raise DataError(f"{path}: the volume holds NaN or infinite values.")
    if window is not None:
        centre, width = (float(x) for x in window)
        lo, hi = centre - width / 2.0, centre + width / 2.0
    else:
        lo, hi = float(v.min()), float(v.max())
    return scale_to_uint8(v, lo, hi - lo)


def _as_3d(data: np.ndarray, path: Path) -> np.ndarray:
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {tuple(data.shape)}. Split 4D series first.")
    return data


def _header_shape(path: Path) -> tuple[int, ...]:
    import nibabel as nib

    try:
        shape = tuple(int(s) for s in nib.load(str(path)).shape)
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read the NIfTI header ({reason}). Re-export it.") from None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {shape}. Split 4D series first.")
    return shape


def _label_values(data: np.ndarray, path: Path) -> np.ndarray:
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
        self._cache = _VolumeCache(cache_size)

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
        images = _files_by_stem(image_dir, nifti_stem, is_nifti)
        labels = _files_by_stem(label_dir, nifti_stem, is_nifti)
        stems = _match(images, labels, image_dir, label_dir)
        found, shapes = [], {}
        for s in stems:
            shape = _header_shape(images[s])
            label = _as_3d(self._volume(labels[s]), labels[s])
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
            class_names=_names(coding, self.class_names),
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


# -- dispatch ----------------------------------------------------------------------------------------------------
