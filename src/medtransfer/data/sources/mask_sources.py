"""Image + mask pairs in files: a folder pair and a CSV list (the segmentation task's; detection derives boxes from
them too). Both register in :data:`~medtransfer.data.sources.base.SOURCES` like every source.

* :class:`MaskFolderSource` — ``root/images/<stem>.<ext>`` and ``root/masks/<stem>[suffix].<ext>``, paired by file
  stem (the mask's extension may differ from the image's; only files directly in the two folders are read).
* :class:`MaskCsvSource` — a CSV with columns ``image,mask[,split,patient_id]`` (paths relative to the CSV's
  folder, or absolute). Line numbers in messages count the header as line 1.

Mask values follow :mod:`~medtransfer.data.sources.masks`; every mask is read once by :meth:`read`, so that errors
surface before training starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from medtransfer.data.sources.base import SPLITS, register_source
from medtransfer.data.sources.folder import SPLIT_ALIASES, canonical_split
from medtransfer.data.sources.image_files import is_image_file
from medtransfer.data.sources.mask_pairs import (
    MaskedImages,
    MaskSource,
    files_by_stem,
    matched_stems,
    pair_samples,
    scan_pairs,
)
from medtransfer.data.sources.masks import MASK_SUFFIXES, class_names_for
from medtransfer.data.sources.special_files import is_special_file
from medtransfer.errors import DataError, did_you_mean


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
        images = files_by_stem(image_dir, lambda p: p.stem, is_image_file)
        masks = files_by_stem(mask_dir, self._mask_stem, lambda p: p.suffix.lower() in MASK_SUFFIXES)
        stems = matched_stems(images, masks, image_dir, mask_dir)
        pairs = [(images[s], masks[s], "") for s in stems]
        coding = scan_pairs(pairs, self.class_names)
        return MaskedImages(
            samples=pair_samples(pairs, coding, self.window),
            class_names=class_names_for(coding, self.class_names),
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
        coding = scan_pairs(pairs, self.class_names)
        return MaskedImages(
            samples=pair_samples(pairs, coding, self.window, splits, patients),
            class_names=class_names_for(coding, self.class_names),
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
