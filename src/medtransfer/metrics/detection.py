"""Detection metrics on many bootstrap resamples at once: COCO average precision (AP@0.5, AP@[.5:.95], per class)
and FROC sensitivities, from per-image matching results stored once.

Matching is done once per test image (:func:`detection_cases`): each detection, best score first, is matched to the
unmatched true box of its class with the highest IoU, at each of COCO's ten IoU thresholds (0.50, 0.55, … 0.95), as
COCO's ``evaluateImg`` does; the result is a bit per threshold, and an eleventh bit for the FROC's hit rule (IoU >=
0.5 or the centre inside the box, see :mod:`medtransfer.metrics.froc`). A resample of test images is then a vector of
image weights (how often each image was drawn), and AP is computed from weighted cumulative true and false
positives: the 101-point interpolated precision of COCO, over every resample in one array operation. Row 0 of the
resamples is the test set as it is; there the values equal torchmetrics' ``MeanAveragePrecision`` (tested), which is
too slow to call on two thousand resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medtransfer.metrics.bootstrap import nanmean
from medtransfer.metrics.froc import FP_RATES, box_iou, match_image

IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))
FROC_BIT = len(IOU_THRESHOLDS)  # the bit of the FROC hit rule
RECALL_LEVELS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100  # per image and class, as COCO's maxDets
_CHUNK = 128  # resamples per array operation


def detection_cases(predictions: Sequence[dict], truths: Sequence[np.ndarray], num_classes: int, *,
                    hit: str = "iou") -> dict[str, np.ndarray]:
    """Per-image columns: the detections' (the 100 best of each class, as COCO keeps them) ``score`` (NaN-padded),
    ``label`` (-1) and ``hits`` (bit ``t``:
    a true positive at ``IOU_THRESHOLDS[t]``; bit :data:`FROC_BIT`: a hit by the FROC rule ``hit``), and each image's
    number of true boxes per class, ``true``.

    ``predictions[i]``: ``{"boxes": K×4, "scores": K, "labels": K}``; ``truths[i]``: ``M×5`` rows of x1 y1 x2 y2 label.
    """
    n, width = len(truths), MAX_DETECTIONS * num_classes
    score = np.full((n, width), np.nan)
    label = np.full((n, width), -1, dtype=np.int64)
    hits = np.zeros((n, width), dtype=np.int64)
    true = np.zeros((n, num_classes), dtype=np.int64)
    for i, (pred, truth) in enumerate(zip(predictions, truths)):
        truth = np.asarray(truth, dtype=np.float64).reshape(-1, 5)
        t_boxes, t_labels = truth[:, :4], truth[:, 4].astype(np.int64)
        true[i] = np.bincount(t_labels, minlength=num_classes)[:num_classes]
        boxes = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(pred["scores"], dtype=np.float64).reshape(-1)
        labels = np.asarray(pred["labels"], dtype=np.int64).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        rank = np.zeros(len(order), dtype=np.int64)  # each detection's rank within its class, best first
        for c in np.unique(labels):
            rank[order[labels[order] == c]] = np.arange(int((labels == c).sum()))
        keep = order[rank[order] < MAX_DETECTIONS]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        k = len(keep)
        score[i, :k], label[i, :k] = scores, labels
        bits = np.zeros(k, dtype=np.int64)
        for t, threshold in enumerate(IOU_THRESHOLDS):
            bits |= match_image(boxes, scores, t_boxes, labels=labels, true_labels=t_labels,
                                iou_threshold=threshold).astype(np.int64) << t
        bits |= match_image(boxes, scores, t_boxes, labels=labels, true_labels=t_labels, hit=hit).astype(np.int64) << FROC_BIT
        hits[i, :k] = bits
    return {"score": score, "label": label, "hits": hits, "true": true}


def _weights(resamples: np.ndarray, n: int) -> np.ndarray:
    """``R×n`` how often each image is drawn in each resample."""
    resamples = np.asarray(resamples)
    w = np.zeros((len(resamples), n))
    np.add.at(w, (np.repeat(np.arange(len(resamples)), resamples.shape[1]), resamples.ravel()), 1.0)
    return w


def _flat(cases: dict, classes: Sequence[int] | None = None):
    """All detections ranked by score (best first): image, class, hit bits, score."""
    score, label, hits = (np.asarray(cases[k]) for k in ("score", "label", "hits"))
    image = np.broadcast_to(np.arange(len(score))[:, None], score.shape)
    real = np.isfinite(score) & (label >= 0)
    if classes is not None:
        real &= np.isin(label, classes)
    image, label, hits, score = image[real], label[real], hits[real], score[real]
    order = np.argsort(-score, kind="mergesort")
    return image[order], label[order], hits[order]


def _cumulative(weights: np.ndarray, image: np.ndarray, hit: np.ndarray):
    """Weighted cumulative true and false positives along the ranking, per resample row."""
    w = weights[:, image]
    return np.cumsum(w * hit, axis=1), np.cumsum(w * ~hit, axis=1)


def average_precision(cases: dict, resamples: np.ndarray, cls: int, thresholds: Sequence[int] = (0,)) -> np.ndarray:
    """COCO AP of class ``cls`` on each resample (``R``), averaged over the IoU thresholds (indices into
    :data:`IOU_THRESHOLDS`); NaN where the resample holds no true box of the class."""
    n = len(cases["score"])
    image, _label, hits = _flat(cases, [cls])
    n_true_per_image = np.asarray(cases["true"])[:, cls].astype(np.float64)
    out = np.zeros(len(resamples))
    for start in range(0, len(resamples), _CHUNK):
        w = _weights(resamples[start:start + _CHUNK], n)
        n_true = w @ n_true_per_image
        ap = np.zeros(len(w))
        for t in thresholds:
            ap += _interpolated_ap(w, image, (hits >> t) & 1 == 1, n_true)
        with np.errstate(invalid="ignore"):
            out[start:start + len(w)] = np.where(n_true > 0, ap / len(thresholds), np.nan)
    return out


def _interpolated_ap(w: np.ndarray, image: np.ndarray, hit: np.ndarray, n_true: np.ndarray) -> np.ndarray:
    """COCO's 101-point interpolated AP per row of image weights ``w``."""
    rows = len(w)
    if not len(image):
        return np.zeros(rows)
    tp, fp = _cumulative(w, image, hit)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_true[:, None] > 0, tp / n_true[:, None], 0.0)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    d = recall.shape[1]
    # one searchsorted over all rows: row r's recalls (in [0, 1]) are shifted by 2r, and so are its recall levels
    offset = 2.0 * np.arange(rows)[:, None]
    found = np.searchsorted((recall + offset).ravel(), (RECALL_LEVELS[None, :] + offset).ravel(), side="left")
    found = found.reshape(rows, -1) - d * np.arange(rows)[:, None]
    ok = found < d
    q = np.where(ok, np.take_along_axis(envelope, np.minimum(found, d - 1), axis=1), 0.0)
    return q.mean(axis=1)


def mean_average_precision(cases: dict, resamples: np.ndarray, thresholds: Sequence[int] = (0,),
                           classes: Sequence[int] | None = None) -> np.ndarray:
    """The mean over classes (those with a true box in the resample) of :func:`average_precision`."""
    num_classes = np.asarray(cases["true"]).shape[1]
    per_class = [average_precision(cases, resamples, c, thresholds) for c in (classes or range(num_classes))]
    return nanmean(np.stack(per_class)) if per_class else np.full(len(resamples), np.nan)


def froc_sensitivities(cases: dict, resamples: np.ndarray, rates: Sequence[float] = FP_RATES) -> np.ndarray:
    """``R × len(rates)`` sensitivity at each rate of false positives per image (all classes pooled), by the hit
    rule the cases were matched with."""
    n = len(cases["score"])
    image, _label, hits = _flat(cases)
    hit = (hits >> FROC_BIT) & 1 == 1
    total_true = np.asarray(cases["true"]).sum(1).astype(np.float64)
    out = np.zeros((len(resamples), len(rates)))
    for start in range(0, len(resamples), _CHUNK):
        w = _weights(resamples[start:start + _CHUNK], n)
        n_true = w @ total_true
        tp, fp = _cumulative(w, image, hit) if len(image) else (np.zeros((len(w), 0)),) * 2
        for j, rate in enumerate(rates):
            count = (fp / n <= rate).sum(1)  # fp rises along the ranking: a prefix is within the rate
            reached = np.where(count > 0, np.take_along_axis(np.pad(tp, ((0, 0), (1, 0))), count[:, None], 1)[:, 0], 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + len(w), j] = np.where(n_true > 0, reached / n_true, np.nan)
    return out


def froc_points(cases: dict, max_rate: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The FROC curve of the cases as they are: (false positives per image, sensitivity), up to ``max_rate``."""
    n = len(cases["score"])
    image, _label, hits = _flat(cases)
    hit = (hits >> FROC_BIT) & 1 == 1
    n_true = max(float(np.asarray(cases["true"]).sum()), 1.0)
    fp = np.concatenate([[0.0], np.cumsum(~hit) / max(n, 1)])
    sens = np.concatenate([[0.0], np.cumsum(hit) / n_true])
    keep = fp <= max_rate
    return fp[keep], sens[keep]


__all__ = ["FROC_BIT", "IOU_THRESHOLDS", "average_precision", "box_iou", "detection_cases", "froc_points",
           "froc_sensitivities", "mean_average_precision"]
