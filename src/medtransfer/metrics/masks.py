"""Metrics of class masks: per-image Dice, IoU and 95th-percentile Hausdorff distance per foreground class.

Masks are integer class-index arrays (``0`` = background). For each image and each foreground class ``c`` the
prediction ``pred == c`` is compared with the truth ``true == c``; the reported value of a class is the mean over
images ("per-image" averaging, so small and large structures weigh the same), and the overall value is the mean over
foreground classes.

Empty masks (per image and class):

* both empty — Dice 1 and IoU 1 (nothing to find, nothing found); HD95 undefined (NaN).
* prediction empty, truth not (a miss) — Dice 0 and IoU 0; HD95 undefined (NaN).
* prediction not empty, truth empty (a false alarm) — Dice 0 and IoU 0; HD95 undefined (NaN).

Undefined HD95 values are left out of the HD95 mean; how many there were of each kind is reported per class
(``both_empty``, ``empty_pred``, ``empty_true``; ``n_hd95`` counts the images the HD95 mean is over).

HD95 is computed here with SciPy rather than taken from a library: ``torchmetrics.segmentation.HausdorffDistance``
(torchmetrics 1.9) gives only the maximum distance, not a percentile, and MONAI is not a dependency. The definition
follows MONAI's ``compute_hausdorff_distance(percentile=95)``: the border of a mask is its pixels removed by one
binary erosion (4-connected cross; pixels on the image edge count as border); for every border pixel of one mask the
Euclidean distance (in pixels) to the nearest border pixel of the other is taken from a distance transform; HD95 is
the larger of the two directed 95th percentiles (numpy's linear interpolation).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from medtransfer.errors import ConfigError, DataError
from medtransfer.metrics.bootstrap import percentile_interval, resample_cases


def overlap(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU of boolean masks, each row of ``N×P`` arrays one mask (or two masks of any shape): 1 where
    both masks are empty. The one definition of both overlaps in medtransfer."""
    p, t = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    if p.ndim != 2:
        p, t = p.reshape(1, -1), t.reshape(1, -1)
    inter = np.count_nonzero(p & t, axis=1).astype(np.float64)
    total = (np.count_nonzero(p, axis=1) + np.count_nonzero(t, axis=1)).astype(np.float64)
    empty = total == 0
    dice = np.where(empty, 1.0, 2 * inter / np.maximum(total, 1))
    iou = np.where(empty, 1.0, inter / np.maximum(total - inter, 1))
    return dice, iou


def dice_iou(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two boolean masks; both 1.0 when both masks are empty."""
    dice, iou = overlap(np.asarray(pred).reshape(1, -1), np.asarray(true).reshape(1, -1))
    return float(dice[0]), float(iou[0])


def dice_per_image(pred, true, num_classes: int) -> np.ndarray:
    """``N×(C-1)`` Dice of each foreground class per image, for ``N×H×W`` class-index masks or for two sequences
    of ``H×W`` masks whose sizes may differ between images (not within a pair)."""
    if not len(pred):
        return np.zeros((0, num_classes - 1))
    if isinstance(pred, (list, tuple)) or isinstance(true, (list, tuple)):
        return np.concatenate([dice_per_image(np.asarray(p)[None], np.asarray(t)[None], num_classes)
                               for p, t in zip(pred, true)])
    p = np.asarray(pred).reshape(len(pred), -1)
    t = np.asarray(true).reshape(len(true), -1)
    return np.stack([overlap(p == c, t == c)[0] for c in range(1, num_classes)], axis=1)


def mask_border(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask that one erosion (4-connected) removes; image-edge pixels count as border."""
    m = np.asarray(mask, dtype=bool)
    return m & ~ndimage.binary_erosion(m, border_value=0)


def hausdorff_percentile(pred: np.ndarray, true: np.ndarray, percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance (pixels) between two boolean masks; NaN if either is empty."""
    p, t = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    if not p.any() or not t.any():
        return float("nan")
    bp, bt = mask_border(p), mask_border(t)
    to_true = ndimage.distance_transform_edt(~bt)  # distance of every pixel to the nearest border pixel of ``true``
    to_pred = ndimage.distance_transform_edt(~bp)
    return float(max(np.percentile(to_true[bp], percentile), np.percentile(to_pred[bt], percentile)))


def _as_masks(masks, what: str) -> list[np.ndarray]:
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        raise ConfigError(f"{what}: got one 2D mask; pass a list of masks or an N×H×W array.")
    out = []
    for i, m in enumerate(masks):
        a = np.asarray(m.detach().cpu() if hasattr(m, "detach") else m)
        if a.ndim != 2:
            raise DataError(f"{what}[{i}]: expected a 2D mask of class indices, got shape {a.shape}.")
        if a.dtype.kind not in "iub":
            if a.dtype.kind == "f" and np.array_equal(a, np.round(a)):
                a = a.astype(np.int64)
            else:
                raise DataError(f"{what}[{i}]: expected integer class indices, got dtype {a.dtype}.")
        out.append(a.astype(np.int64))
    return out


def mask_metrics(pred_masks: Sequence[np.ndarray] | np.ndarray, true_masks: Sequence[np.ndarray] | np.ndarray,
                         num_classes: int, *, class_names: Sequence[str] | None = None,
                         percentile: float = 95.0) -> dict:
    """Dice, IoU and HD95 per foreground class, averaged over images.

    ``pred_masks`` and ``true_masks``: same-length sequences of ``H×W`` integer masks (sizes may differ between
    images, not within a pair), or ``N×H×W`` arrays. ``num_classes`` counts the background. Returns::

        {"dice": float, "iou": float, "hd95": float,          # mean over foreground classes
         "per_class": {name: {"dice", "iou", "hd95", "n_images", "n_hd95", "both_empty", "empty_pred", "empty_true"}},
         "per_image": {"dice": N×K, "iou": N×K, "hd95": N×K}}  # K = num_classes - 1; NaN where HD95 is undefined

    Class names default to ``"foreground"`` for binary masks and ``"class_1"``, ... otherwise; ``class_names``
    (background first, ``num_classes`` of them) overrides them.
    """
    num_classes = _checked_num_classes(num_classes, class_names)
    preds, trues = _as_masks(pred_masks, "pred_masks"), _as_masks(true_masks, "true_masks")
    _check_pairs(preds, trues, num_classes)
    names = _foreground_names(num_classes, class_names)
    scores = _per_image_scores(preds, trues, num_classes, percentile)
    per_class = {name: _class_summary(scores, j) for j, name in enumerate(names)}
    return {
        "dice": float(np.mean([v["dice"] for v in per_class.values()])),
        "iou": float(np.mean([v["iou"] for v in per_class.values()])),
        "hd95": _nanmean(np.array([v["hd95"] for v in per_class.values()])),
        "per_class": per_class,
        "per_image": {key: scores[key] for key in ("dice", "iou", "hd95")},
    }


def _checked_num_classes(num_classes, class_names: Sequence[str] | None) -> int:
    if int(num_classes) != num_classes or num_classes < 2:
        raise ConfigError(f"num_classes={num_classes!r}: give the number of classes including background (>= 2).")
    num_classes = int(num_classes)
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError(f"class_names has {len(class_names)} names but num_classes is {num_classes}.")
    return num_classes


def _check_pairs(preds: list[np.ndarray], trues: list[np.ndarray], num_classes: int) -> None:
    """One prediction per image, of its truth's size, holding class indices only."""
    if len(preds) != len(trues):
        raise DataError(f"{len(preds)} predicted masks but {len(trues)} true masks; give one prediction per image.")
    if not preds:
        raise DataError("no masks given; the mask metrics need at least one image.")
    for i, (p, t) in enumerate(zip(preds, trues)):
        if p.shape != t.shape:
            raise DataError(f"image {i}: predicted mask {p.shape} and true mask {t.shape} differ in size.")
        for what, a in (("pred_masks", p), ("true_masks", t)):
            if a.min() < 0 or a.max() >= num_classes:
                bad = a.min() if a.min() < 0 else a.max()
                raise DataError(f"{what}[{i}]: value {int(bad)} is not a class index 0..{num_classes - 1}.")


def _foreground_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    fg = range(1, num_classes)
    if class_names is not None:
        return [str(class_names[c]) for c in fg]
    return ["foreground"] if num_classes == 2 else [f"class_{c}" for c in fg]


def _per_image_scores(preds: list[np.ndarray], trues: list[np.ndarray], num_classes: int,
                      percentile: float) -> dict[str, np.ndarray]:
    """``N×K`` arrays (K foreground classes): Dice, IoU, HD95 and which masks were empty."""
    n, k = len(preds), num_classes - 1
    dice, iou, hd = np.zeros((n, k)), np.zeros((n, k)), np.full((n, k), np.nan)
    empty_pred, empty_true = np.zeros((n, k), bool), np.zeros((n, k), bool)
    for i, (p, t) in enumerate(zip(preds, trues)):
        for j, c in enumerate(range(1, num_classes)):
            pc, tc = p == c, t == c
            dice[i, j], iou[i, j] = dice_iou(pc, tc)
            hd[i, j] = hausdorff_percentile(pc, tc, percentile)
            empty_pred[i, j], empty_true[i, j] = not pc.any(), not tc.any()
    return {"dice": dice, "iou": iou, "hd95": hd, "empty_pred": empty_pred, "empty_true": empty_true}


def _class_summary(scores: dict[str, np.ndarray], j: int) -> dict:
    """Class ``j``'s means over images and its counts of empty masks."""
    dice, iou, hd = scores["dice"][:, j], scores["iou"][:, j], scores["hd95"][:, j]
    empty_pred, empty_true = scores["empty_pred"][:, j], scores["empty_true"][:, j]
    return {
        "dice": float(dice.mean()),
        "iou": float(iou.mean()),
        "hd95": _nanmean(hd),
        "n_images": len(dice),
        "n_hd95": int(np.isfinite(hd).sum()),
        "both_empty": int((empty_pred & empty_true).sum()),
        "empty_pred": int((empty_pred & ~empty_true).sum()),
        "empty_true": int((empty_true & ~empty_pred).sum()),
    }


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def bootstrap_mean(per_image_scores, n_resamples: int = 1000, seed: int = 0,
                           level: float = 0.95) -> dict[str, float]:
    """Mean of per-image scores with a percentile bootstrap interval over images.

    ``per_image_scores``: one score per image (e.g. ``mask_metrics(...)["per_image"]["dice"][:, 0]``). An
    ``N×K`` array (one column per class) is first averaged over classes per image. NaN scores (undefined HD95) are
    left out before resampling. Returns ``{"value", "ci_low", "ci_high", "n"}``; all resamples are drawn at once.
    """
    s = np.asarray(per_image_scores, dtype=np.float64)
    if s.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            s = np.nanmean(s, axis=1)
    if s.ndim != 1:
        raise ConfigError(f"per_image_scores: expected one score per image (1D) or N×K, got shape {s.shape}.")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples={n_resamples!r}: give at least 1.")
    s = s[np.isfinite(s)]
    if s.size == 0:
        nan = float("nan")
        return {"value": nan, "ci_low": nan, "ci_high": nan, "n": 0}
    idx = resample_cases(s.size, n_resamples, seed)  # row 0: the images as they are
    out = percentile_interval(s[idx].mean(axis=1), level)
    out["n"] = int(s.size)
    return out
