"""CSV manifests: one row per image, with its path, its label and optionally its split and patient.

Columns: ``path`` (relative to the CSV's folder, or absolute), ``label`` (a class name or an integer), and
optionally ``split`` (``train``, ``val``/``valid``/``validation``, ``test``; empty = unassigned) and
``patient_id``. Multi-label data has several 0/1 columns instead of ``label``. The delimiter may be ``,``, ``;``
or a tab. Line numbers in messages count the header as line 1.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from medtransfer.data.sources.base import (
    SPLITS,
    LabelledImages,
    Sample,
    Source,
    register_source,
)
from medtransfer.data.audit import check_spellings
from medtransfer.data.sources.annotations import BOX_COLUMNS
from medtransfer.data.sources.folder import SPLIT_ALIASES, canonical_split
from medtransfer.data.sources.image_files import image_patient_id, read_image_file
from medtransfer.data.sources.special_files import is_special_file
from medtransfer.errors import ConfigError, DataError, did_you_mean

SPLIT_COLUMN = "split"
PATIENT_COLUMN = "patient_id"
_INTEGER = re.compile(r"^[+-]?\d+$")
_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


@dataclass(frozen=True)
class _Row:
    line: int
    cells: dict[str, str]


@register_source
class CsvManifestSource(Source):
    """Images listed in a CSV file.

    ``label_column`` names the single-label column. ``label_columns`` names 0/1 columns for multi-label data; when
    neither it nor a ``label`` column is there, every other column holding only 0/1 values is a label (at least two
    are needed). ``path_column`` names the image-path column. ``window=(centre, width)`` goes to the DICOM reader.
    """

    kind = "csv"

    def __init__(
        self,
        csv_path: str | os.PathLike,
        *,
        label_column: str = "label",
        label_columns: list[str] | None = None,
        path_column: str = "path",
        window: tuple[float, float] | None = None,
    ):
        if label_columns is not None and len(label_columns) == 0:
            raise ConfigError("label_columns is empty; name the 0/1 label columns, or leave it unset.")
        self.csv_path = Path(csv_path).expanduser()
        self.label_column = label_column
        self.label_columns = list(label_columns) if label_columns is not None else None
        self.path_column = path_column
        self.window = window

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec).expanduser()
        return p.suffix.lower() == ".csv" and p.is_file()

    def read(self) -> LabelledImages:
        columns, rows = self._read_rows()
        where = self.csv_path
        if set(BOX_COLUMNS) <= set(columns) and self.path_column not in columns:  # read as a manifest by mistake
            raise DataError(f"{where}: a detection data set (a box CSV: {','.join(BOX_COLUMNS)}, one row per box), not "
                            f"an image manifest. Use it with --task detection, or evaluate a detection model on it.")
        if self.path_column not in columns:
            raise DataError(
                f"{where}: no {self.path_column!r} column{did_you_mean(self.path_column, columns)} (columns: "
                f"{', '.join(columns)}). Name the image-path column {self.path_column!r} or pass --path-column."
            )
        multilabel = self._multilabel_columns(columns, rows)
        if multilabel is None and self.label_column not in columns:
            raise DataError(
                f"{where}: no {self.label_column!r} column{did_you_mean(self.label_column, columns)} (columns: "
                f"{', '.join(columns)}). Pass --label-column with the column that holds the labels "
                f"(or give at least two 0/1 columns for multi-label data)."
            )

        paths = [self._path(row) for row in rows]
        self._check_listed_once(rows, paths, multilabel)
        splits = [self._split(row, columns) for row in rows]
        if PATIENT_COLUMN in columns:  # the manifest's own patient ids win over the DICOM headers
            patients = [row.cells[PATIENT_COLUMN].strip() or None for row in rows]
        else:  # DICOM files: a salted hash of the header's Patient ID (or Study UID); other images: none
            patients = [image_patient_id(path) for path in paths]
        if multilabel is not None:
            class_names = multilabel
            targets: list[int | tuple[int, ...]] = [self._binary_vector(row, multilabel) for row in rows]
        else:
            class_names, indices = self._classes(rows)
            targets = list(indices)
        self._check_files_exist(rows, paths)

        samples = [
            Sample(
                ref=str(path),
                load=partial(read_image_file, path, window=self.window),
                target=target,
                split=split,
                patient_id=patient,
            )
            for path, target, split, patient in zip(paths, targets, splits, patients)
        ]
        kind = "multilabel" if multilabel is not None else ("binary" if len(class_names) == 2 else "multiclass")
        return LabelledImages(
            samples=samples,
            class_names=class_names,
            label_kind=kind,
            name=self.csv_path.stem,
            description=f"{len(samples)} images listed in {self.csv_path.name}",
        )

    # -- parsing -----------------------------------------------------------------------------------------
    def _read_rows(self) -> tuple[list[str], list[_Row]]:
        where = self.csv_path
        if not where.is_file():
            what = "is a folder, not a CSV file" if where.is_dir() else "no such file"
            raise DataError(f"{where}: {what}. Check the path to the CSV manifest.")
        try:
            with open(where, newline="", encoding="utf-8-sig") as f:
                first = f.readline()
                f.seek(0)
                reader = csv.reader(f, delimiter=_delimiter(first))
                header = next(reader, None)
                if header is None or not any(h.strip() for h in header):
                    raise DataError(
                        f"{where}: the CSV is empty. Give a header line (path,label,...) and one row per image."
                    )
                columns = [h.strip() for h in header]
                duplicates = sorted({c for c in columns if columns.count(c) > 1})
                if duplicates:
                    shown = ", ".join(map(repr, duplicates))
                    raise DataError(f"{where}, line 1: duplicate column(s) {shown}. Rename them.")
                rows: list[_Row] = []
                end = reader.line_num
                try:
                    for cells in reader:
                        line, end = end + 1, reader.line_num
                        if not any(c.strip() for c in cells):
                            continue
                        if len(cells) != len(columns):
                            raise DataError(
                                f"{where}, line {line}: {len(cells)} values but the header has {len(columns)} columns. "
                                f"Fix the line (quote values that contain the delimiter)."
                            )
                        rows.append(_Row(line, dict(zip(columns, cells))))
                except csv.Error as e:
                    raise DataError(f"{where}, line {reader.line_num}: malformed CSV ({e}). Fix the line.") from None
        except UnicodeDecodeError:
            raise DataError(f"{where}: not UTF-8 text. Save the CSV as UTF-8.") from None
        except OSError as e:
            raise DataError(f"{where}: cannot read the file ({e.strerror or e}).") from None
        if not rows:
            raise DataError(f"{where}: the CSV has a header but no rows. Add one row per image.")
        return columns, rows

    def _multilabel_columns(self, columns: list[str], rows: list[_Row]) -> list[str] | None:
        """The multi-label columns, or ``None`` for single-label data."""
        if self.label_columns is not None:
            missing = [c for c in self.label_columns if c not in columns]
            if missing:
                raise DataError(
                    f"{self.csv_path}: no label column {missing[0]!r}{did_you_mean(missing[0], columns)} "
                    f"(columns: {', '.join(columns)}). Check the names of the multi-label columns."
                )
            return list(self.label_columns)
        if self.label_column in columns or self.label_column != "label":
            return None
        reserved = {self.path_column, SPLIT_COLUMN, PATIENT_COLUMN}
        binary = [c for c in columns if c not in reserved and all(r.cells[c].strip() in _BINARY for r in rows)]
        return binary if len(binary) >= 2 else None

    def _path(self, row: _Row) -> Path:
        cell = row.cells[self.path_column].strip()
        if not cell:
            raise DataError(
                f"{self.csv_path}, line {row.line}: empty {self.path_column!r} cell. "
                f"Fill in the image path or delete the line."
            )
        p = Path(cell).expanduser()
        return p if p.is_absolute() else self.csv_path.parent / p

    def _split(self, row: _Row, columns: list[str]) -> str | None:
        if SPLIT_COLUMN not in columns:
            return None
        cell = row.cells[SPLIT_COLUMN].strip()
        if not cell:
            return None
        split = canonical_split(cell)
        if split is None:
            raise DataError(
                f"{self.csv_path}, line {row.line}: unknown split {cell!r}{did_you_mean(cell.lower(), SPLIT_ALIASES)} "
                f"in column {SPLIT_COLUMN!r}; allowed: {', '.join(SPLITS)} (or valid, validation), or empty."
            )
        return split

    def _binary_vector(self, row: _Row, label_columns: list[str]) -> tuple[int, ...]:
        values = []
        for c in label_columns:
            cell = row.cells[c].strip()
            if cell not in _BINARY:
                shown = repr(cell) if cell else "an empty cell"
                raise DataError(
                    f"{self.csv_path}, line {row.line}, column {c!r}: {shown} is not 0 or 1. "
                    f"Multi-label columns hold 0 (absent) or 1 (present) only."
                )
            values.append(_BINARY[cell])
        return tuple(values)

    def _classes(self, rows: list[_Row]) -> tuple[list[str], list[int]]:
        """The sorted class names and each row's class index (integer labels sort numerically)."""
        cells = []
        for row in rows:
            cell = row.cells[self.label_column].strip()
            if not cell:
                raise DataError(
                    f"{self.csv_path}, line {row.line}: empty {self.label_column!r} cell. "
                    f"Fill in the label or delete the line."
                )
            cells.append(cell)
        check_spellings(self.csv_path, [(c, f"line {row.line}") for c, row in zip(cells, rows)])
        if all(_INTEGER.match(c) for c in cells):
            numbers = [int(c) for c in cells]
            values = sorted(set(numbers))
            index = {v: i for i, v in enumerate(values)}
            names, targets = [str(v) for v in values], [index[n] for n in numbers]
        else:
            names = sorted(set(cells))
            index_s = {c: i for i, c in enumerate(names)}
            targets = [index_s[c] for c in cells]
        if len(names) < 2:
            raise DataError(
                f"{self.csv_path}: column {self.label_column!r} holds a single class ({names[0]!r}); "
                f"classification needs at least two. Check the label column."
            )
        return names, targets

    def _check_listed_once(self, rows: list[_Row], paths: list[Path], multilabel: list[str] | None) -> None:
        """One row per image: the same path (after normalisation) twice is a duplicate, or an image with two labels."""
        first: dict[str, _Row] = {}
        repeats = []
        for row, p in zip(rows, paths):
            key = os.path.normcase(os.path.abspath(p))
            if key in first:
                repeats.append((first[key], row))
            else:
                first[key] = row
        if not repeats:
            return
        columns = multilabel or [self.label_column]
        for a, b in repeats:
            la, lb = ([r.cells.get(c, "").strip() for c in columns] for r in (a, b))
            if la != lb:
                raise DataError(
                    f"{self.csv_path}, lines {a.line} and {b.line}: {b.cells[self.path_column].strip()!r} has two labels "
                    f"({', '.join(la)} and {', '.join(lb)}). Keep one row per image, with its one label.")
        a, b = repeats[0]
        raise DataError(
            f"{self.csv_path}, lines {a.line} and {b.line}: {b.cells[self.path_column].strip()!r} is listed twice "
            f"({len(repeats)} repeated row(s) in all); a repeated image can land in train and test. Keep one row per image.")

    def _check_files_exist(self, rows: list[_Row], paths: list[Path]) -> None:
        folders = [(row, p) for row, p in zip(rows, paths) if p.is_dir()]
        if folders:
            row, p = folders[0]
            raise DataError(f"{self.csv_path}, line {row.line}: {row.cells[self.path_column].strip()!r} is a folder, not "
                            f"an image file ({len(folders)} such rows). List image files, one per row.")
        special = [(row, p) for row, p in zip(rows, paths) if is_special_file(p)]
        if special:
            row, p = special[0]
            cell = row.cells[self.path_column].strip()
            raise DataError(f"{self.csv_path}, line {row.line}: {cell!r} is not a regular file (a named pipe, socket "
                            f"or device; {len(special)} such rows). List image files.")
        missing = [(row, p) for row, p in zip(rows, paths) if not p.is_file()]
        if missing:
            row, p = missing[0]
            cell = row.cells[self.path_column].strip()
            raise DataError(
                f"{self.csv_path}, line {row.line}: image {cell!r} not found (looked for {p}); "
                f"{len(missing)} of {len(rows)} listed images are missing. "
                f"Fix the paths; relative paths are relative to the CSV's folder."
            )


def _delimiter(header_line: str) -> str:
    """``,``, ``;`` or a tab: whichever occurs most in the header line (``,`` if none does)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
