"""The files a prediction writes: one CSV written row by row, and one file name per input image (its stem, made
unique when two inputs share one)."""

from __future__ import annotations

import csv
from pathlib import Path


class CsvTable:
    """A CSV file in the output folder, written row by row."""

    def __init__(self, path: Path, header: list[str]):
        self.path = Path(path)
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(header)

    def add(self, row: list) -> None:
        self._csv.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in row])

    def close(self) -> Path:
        self._file.close()
        return self.path


class FileNames:
    """``<stem><suffix>`` for each input path, ``<stem>-2<suffix>`` … when a stem repeats."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def name(self, path: str, suffix: str) -> str:
        stem = Path(path).name
        for ext in (".gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
            stem = stem[: -len(ext)] if stem.lower().endswith(ext) else stem
        candidate, k = stem or "image", 1
        while f"{candidate}{suffix}".lower() in self._used:
            k += 1
            candidate = f"{stem}-{k}"
        self._used.add(f"{candidate}{suffix}".lower())
        return f"{candidate}{suffix}"
