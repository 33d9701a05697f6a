"""Audits of a data set before anything trains: one image, one label, one spelling, one split per image and patient.

Each finding is a :class:`~medtransfer.errors.DataError` naming the files (or samples) at fault and what to do. A
split the source gives as an official benchmark split (MedMNIST) is kept as published: what is wrong with it becomes
a notice on the dataset card instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from medtransfer.errors import DataError


def _spelling(label: str) -> str:
    """What two spellings of one label share: case, surrounding space and numeric form (1 and 1.0) ignored."""
    text = " ".join(label.split()).casefold()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def check_spellings(source, labels: list[tuple[str, str]]) -> None:
    """``labels``: (label, where). Labels that differ only by case, spaces or numeric form are one label spelt
    two ways: an error naming both spellings and where each occurs."""
    seen: dict[str, tuple[str, str]] = {}
    for label, where in labels:
        key = _spelling(label)
        if key in seen and seen[key][0] != label:
            other, other_where = seen[key]
            raise DataError(f"{source}: the labels {other!r} ({other_where}) and {label!r} ({where}) differ only in "
                            f"case, spaces or number format, so they would become two classes. Spell each label one way.")
        seen.setdefault(key, (label, where))


def _is_file_ref(sample) -> bool:
    """Whether the sample is a whole image file. A slice of a volume or an image of a ``.npz`` has a reference like
    ``a.nii.gz[axis=2][7]`` that names no file; a file may have ``[`` in its name (``a[1].png``), so the test is
    whether the reference is a regular file, not how it is spelt."""
    return Path(str(sample.ref)).is_file()


def _content_key(sample) -> str | None:
    """A hash of the image's bytes: the file's, or the array's for images held in memory (a ``.npz``); ``None`` for
    slices of a volume (blank slices are alike by nature)."""
    if _is_file_ref(sample):
        return hashlib.blake2b(Path(str(sample.ref)).read_bytes(), digest_size=16).hexdigest()
    array = getattr(sample.load, "array", None)
    if array is not None:  # an image of an in-memory array
        return hashlib.blake2b(np.ascontiguousarray(sample.load()).tobytes(), digest_size=16).hexdigest()
    return None


def audit_split(data, split) -> None:
    """The same image (path or bytes) twice, a patient in two given splits, and a multi-label label that does not
    vary over a split. ``split`` is a DataSplit."""
    _audit_duplicates(data, split)
    audit_label_variation(data, split)


def audit_label_variation(data, split) -> None:
    """Each label of multi-label data must be present in some and absent in other images of every split: a label
    that is 1 everywhere (or 0 everywhere) in training cannot be learnt, and in validation or test it has no AUC.
    (A class missing from a split of single-label data is refused by the split and task checks.)"""
    if getattr(data, "label_kind", None) != "multilabel":
        return
    t = data.targets()
    for part in ("train", "val", "test"):
        idx = getattr(split, part)
        if not len(idx):
            continue
        pos = t[idx].sum(0)
        constant = [(n, 1 if pos[j] else 0) for j, n in enumerate(data.class_names) if pos[j] in (0, len(idx))]
        if not constant:
            continue
        name, value = constant[0]
        where = {"train": "training", "val": "validation", "test": "test"}[part]
        why = "a model cannot learn it" if part == "train" else "its AUC cannot be computed"
        how = ("add images with and without it to that split in the source's split column, or leave the split out "
               "and medtransfer makes a stratified one" if split.given else "use more images, or leave the label out")
        more = f" ({len(constant) - 1} other label(s) too)" if len(constant) > 1 else ""
        raise DataError(f"{data.name}: label {name!r} is {value} in all {len(idx)} images of the "
                        f"{'given ' if split.given else ''}{where} split{more}, so {why}; {how}.")


def _audit_duplicates(data, split) -> None:
    """The same image (path or bytes) twice, and a patient in two given splits."""
    part = np.empty(len(data.samples), dtype=object)
    for name in ("train", "val", "test"):
        part[getattr(split, name)] = name
    official = getattr(data, "official_split", False)
    by_key: dict[str, int] = {}
    for i, s in enumerate(data.samples):
        for key in (f"path:{os.path.normcase(os.path.abspath(str(s.ref)))}" if _is_file_ref(s) else None,
                    _content_key(s)):
            if key is None:
                continue
            if key in by_key:
                j = by_key[key]
                a, b = data.samples[j], s
                where = (f"in the {part[j]} and {part[i]} splits" if part[j] != part[i] else f"both in {part[i]}")
                same = "the same file" if key.startswith("path:") else "identical images"
                message = f"{a.ref} and {b.ref} are {same}, {where}"
                if official:
                    notice = f"{message} (kept: the source's official split is used as published)."
                    if notice not in data.notices:
                        data.notices.append(notice)
                    continue
                raise DataError(f"{message}; a repeated image inflates or leaks the test results. Remove one of them.")
            by_key[key] = i
    if split.given:
        first: dict[str, int] = {}
        for i, s in enumerate(data.samples):
            if not s.patient_id or part[i] is None:
                continue
            j = first.setdefault(s.patient_id, i)
            if part[j] != part[i]:
                raise DataError(f"patient {s.patient_id!r} is in the {part[j]} split ({data.samples[j].ref}) and the "
                                f"{part[i]} split ({s.ref}); a patient's images must all be in one split. Fix the "
                                f"split column, or leave it out and medtransfer splits by patient.")
