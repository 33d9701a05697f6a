"""Free-response ROC (FROC): the sensitivity of a detector against its false positives per image, as Tajbakhsh et al.
scored polyp and embolism detection, and the CPM (the mean sensitivity at 1/8 … 8 false positives per image).

Detections of all images are ranked by score. Within an image, each detection, best score first, is a hit when it
finds a true box (of its class, when classes are given) not yet found: at IoU >= 0.5 (``hit="iou"``), or when its
centre lies inside the true box (``hit="centre"``, closer to how the paper counted a polyp as found); otherwise it
is a false positive (a second detection of a found box included). The sensitivity at a rate is the highest reached
with no more than that many false positives per image, over all score thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
HITS = ("iou", "centre")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (``N×4``, x1 y1 x2 y2) with every box in ``b`` (``M×4``): ``N×M``."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_image(boxes, scores, true_boxes, *, labels=None, true_labels=None, hit: str = "iou",
                iou_threshold: float = 0.5) -> np.ndarray:
    """Whether each detection of one image (in the given order) is a hit; detections are taken best score first."""
    if hit not in HITS:
        raise ValueError(f"hit must be one of {', '.join(HITS)}, not {hit!r}")
    boxes, true_boxes = np.asarray(boxes, float).reshape(-1, 4), np.asarray(true_boxes, float).reshape(-1, 4)
    found = np.zeros(len(true_boxes), bool)
    hits = np.zeros(len(boxes), bool)
    if not len(boxes) or not len(true_boxes):
        return hits
    iou = box_iou(boxes, true_boxes)
    if hit == "centre":
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = ((cx[:, None] >= true_boxes[None, :, 0]) & (cx[:, None] <= true_boxes[None, :, 2])
                  & (cy[:, None] >= true_boxes[None, :, 1]) & (cy[:, None] <= true_boxes[None, :, 3]))
    else:
        inside = iou >= iou_threshold
    if labels is not None and true_labels is not None:
        inside &= np.asarray(labels)[:, None] == np.asarray(true_labels)[None, :]
    for d in np.argsort(-np.asarray(scores, float), kind="stable"):
        candidates = np.flatnonzero(inside[d] & ~found)
        if len(candidates):
            found[candidates[np.argmax(iou[d, candidates])]] = True
            hits[d] = True
    return hits


def froc_curve(detections: Sequence[tuple], truths: Sequence, *, hit: str = "iou",
               iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(false positives per image, sensitivity) at every score threshold, from the highest score down.

    ``detections[i]``: ``(boxes, scores)`` or ``(boxes, scores, labels)`` of image ``i``; ``truths[i]``: its true
    boxes, or ``(boxes, labels)``."""
    n_images = len(truths)
    all_scores, all_hits, n_true = [], [], 0
    for det, truth in zip(detections, truths):
        boxes, scores, *labels = det
        true_boxes, *true_labels = truth if isinstance(truth, tuple) else (truth,)
        n_true += len(np.asarray(true_boxes).reshape(-1, 4))
        all_scores.append(np.asarray(scores, float))
        all_hits.append(match_image(boxes, scores, true_boxes, labels=labels[0] if labels else None,
                                    true_labels=true_labels[0] if true_labels else None, hit=hit,
                                    iou_threshold=iou_threshold))
    scores, hits = np.concatenate(all_scores or [np.zeros(0)]), np.concatenate(all_hits or [np.zeros(0, bool)])
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.cumsum(hits[order]), np.cumsum(~hits[order])
    return np.concatenate([[0.0], fp / max(n_images, 1)]), np.concatenate([[0.0], tp / n_true if n_true else tp * np.nan])


def froc(detections: Sequence[tuple], truths: Sequence, *, rates: Sequence[float] = FP_RATES, hit: str = "iou",
         iou_threshold: float = 0.5) -> dict[str, float]:
    """The sensitivity at each false-positive rate (``"sens@0.125"`` …) and their mean, ``"cpm"``."""
    fp_per_image, sensitivity = froc_curve(detections, truths, hit=hit, iou_threshold=iou_threshold)
    out = {f"sens@{r:g}": float(sensitivity[fp_per_image <= r].max()) for r in rates}
    out["cpm"] = float(np.mean(list(out.values())))
    return out
