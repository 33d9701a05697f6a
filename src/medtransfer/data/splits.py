"""Train/val/test splits and nested training fractions.

A split given by the source is used as is. Otherwise a seeded split stratified by label and grouped by patient, so
that no patient has images in two splits. A training fraction is a seeded, stratified subset of the training split;
for one seed the fractions are nested (the 25 % subset lies inside the 50 % subset), and val/test never change.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from medtransfer.data.sources.base import ImageSet, LabelledImages
from medtransfer.data.audit import audit_split
from medtransfer.errors import ConfigError, DataError


@dataclass(frozen=True)
class DataSplit:
    """Indices into ``LabelledImages.samples`` for each split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    given: bool  # True when the source fixed the split

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _groups(data: LabelledImages) -> np.ndarray:
    return np.asarray([s.patient_id if s.patient_id is not None else f"\0{i}" for i, s in enumerate(data.samples)])


def _carve(idx: np.ndarray, strata: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (rest, one fold of about 1/n_splits), stratified and grouped."""
    largest_stratum = np.unique(strata[idx], return_counts=True)[1].max()
    n_splits = max(2, min(n_splits, len(np.unique(groups[idx])), largest_stratum))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has fewer members than n_splits"
        rest, fold = next(cv.split(idx, strata[idx], groups[idx]))
    return idx[rest], idx[fold]


def make_split(data: LabelledImages, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2) -> DataSplit:
    """The source's split if it has one; otherwise a seeded stratified, patient-grouped split (70/10/20 by default)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in (0, 1), sum < 1")
    splits = np.asarray([s.split or "" for s in data.samples])
    strata, groups = data.strata(), _groups(data)
    if len(data.samples) < 10:
        raise DataError(f"{data.name}: only {len(data.samples)} images; at least 10 are needed to train and test")
    if all(splits != ""):
        idx = {k: np.flatnonzero(splits == k) for k in ("train", "val", "test")}
        if len(idx["train"]) == 0 or len(idx["test"]) == 0:
            raise DataError(f"{data.name}: the given split has no {'train' if len(idx['train']) == 0 else 'test'} images")
        if len(idx["val"]) == 0:  # train/test given: carve validation out of train
            idx["train"], idx["val"] = _carve(idx["train"], strata, groups, round(1 / val_fraction), seed)
        split = DataSplit(idx["train"], idx["val"], idx["test"], given=True)
    else:
        if any(splits != ""):
            raise DataError(f"{data.name}: {int((splits == '').sum())} images have no split while others do; give all or none")
        everything = np.arange(len(data.samples))
        rest, test = _carve(everything, strata, groups, round(1 / test_fraction), seed)
        train, val = _carve(rest, strata, groups, round((1 - test_fraction) / val_fraction), seed)
        split = DataSplit(np.sort(train), np.sort(val), np.sort(test), given=False)
    audit_split(data, split)
    check_split(data, split)
    return split


def check_split(data: ImageSet, split: DataSplit) -> None:
    """Every class must have training examples (images; boxes for detection: :meth:`ImageSet.class_counts`); the
    error names the splits the class is missing from, and a class seen only in test is named as such. (Not for
    segmentation: a class may be absent from some masks by nature.)"""
    per = {k: data.class_counts(getattr(split, k)) for k in ("train", "val", "test")}
    if per["train"] is None:
        return
    what = data.counted
    for c, name in enumerate(data.class_names):
        if per["train"][c] > 0:
            continue
        if per["test"][c] > 0 and per["val"][c] == 0:
            raise DataError(
                f"{data.name}: label {name!r} appears only in the test split ({per['test'][c]} {what}); a model "
                f"cannot learn it. Move some of its images to train, or drop them."
            )
        missing = [k for k in ("train", "val", "test") if per[k][c] == 0]
        where = (", ".join(missing[:-1]) + " and " + missing[-1] + " splits hold" if len(missing) > 1 else
                 f"{missing[0]} split holds")
        how = "Add images of it to the training split" if split.given else "Use more images of it"
        raise DataError(
            f"{data.name}: class {name!r} has no training example (val {per['val'][c]}, test {per['test'][c]}): the "
            f"{where} no {what} of it, so a model cannot learn it. {how}, or remove the class."
        )


def check_scored_classes(data: ImageSet, split: DataSplit, metric: str) -> None:
    """Every class must have examples (:meth:`ImageSet.class_counts`) in the validation and the test split: a class
    without any there gets a ``metric`` of nan, which means nothing and which a mean over classes would hide."""
    for part in ("val", "test"):
        idx = getattr(split, part)
        counts = data.class_counts(idx) if len(idx) else None
        missing = [repr(n) for c, n in enumerate(data.class_names) if counts is not None and counts[c] == 0]
        if missing:
            how = ("add some to it in the source's split, or leave the split out and medtransfer makes one"
                   if split.given else "use more images of it, or remove the class")
            raise DataError(f"{data.name}: the {'given ' if split.given else ''}"
                            f"{'validation' if part == 'val' else part} split holds no {data.counted} of class "
                            f"{', '.join(missing)}, so its {metric} cannot be computed; {how}.")

def training_subset(data: LabelledImages, train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of ``train``; for one seed, smaller fractions are subsets of larger ones."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"training fraction {fraction} must be in (0, 1]")
    if fraction == 1:
        return np.asarray(train)
    strata = data.strata()[train]
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(train))
    keep = []
    for s in np.unique(strata):
        members = order[strata[order] == s]  # this stratum in the seed's fixed order
        keep.append(members[: max(1, math.ceil(fraction * len(members)))])
    return np.sort(np.asarray(train)[np.concatenate(keep)])
