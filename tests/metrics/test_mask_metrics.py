"""Segmentation metrics against hand-computed values, the empty-mask rules, and the bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medtransfer.errors import ConfigError, DataError
from medtransfer.metrics.masks import (
    bootstrap_mean,
    dice_per_image,
    dice_iou,
    hausdorff_percentile,
    mask_border,
    mask_metrics,
)


def square(top: int, left: int, size: int, shape=(20, 24), value: int = 1) -> np.ndarray:
    m = np.zeros(shape, np.int64)
    m[top:top + size, left:left + size] = value
    return m


def test_offset_squares_dice_iou():
    pred, true = square(3, 3, 10), square(3, 5, 10)  # overlap 10×8 = 80 pixels
    d, i = dice_iou(pred, true)
    assert d == pytest.approx(2 * 80 / 200) and i == pytest.approx(80 / 120)
    out = mask_metrics([pred], [true], num_classes=2)
    assert out["dice"] == pytest.approx(0.8) and out["iou"] == pytest.approx(2 / 3)
    assert list(out["per_class"]) == ["foreground"]
    # every border pixel of one square is at most 2 px (horizontally) from the other's border
    assert out["hd95"] == pytest.approx(2.0)


def brute_force_hd(pred: np.ndarray, true: np.ndarray, q: float) -> float:
    def border(m):
        padded = np.pad(m.astype(bool), 1)
        inner = padded[1:-1, 1:-1]
        neighbours = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        return np.argwhere(inner & ~neighbours)

    a, b = border(pred), border(true)
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(dist.min(1), q), np.percentile(dist.min(0), q))


def test_hd95_known_shapes():
    one, other = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    one[0, 0], other[3, 4] = True, True
    assert hausdorff_percentile(one, other) == pytest.approx(5.0)
    # 10×10 square inside a 14×14 one: inner→outer all 2; outer→inner: 40 × 2, 8 × √5, 4 corners × √8
    inner, outer = square(5, 5, 10, value=True), square(3, 3, 14, value=True)
    assert mask_border(inner).sum() == 36 and mask_border(outer).sum() == 52
    assert hausdorff_percentile(outer, inner) == pytest.approx(math.sqrt(8))
    assert hausdorff_percentile(outer, inner, percentile=50) == pytest.approx(2.0)
    rng = np.random.default_rng(1)
    blob_a = rng.random((16, 16)) > 0.6
    blob_b = rng.random((16, 16)) > 0.6
    assert hausdorff_percentile(blob_a, blob_b) == pytest.approx(brute_force_hd(blob_a, blob_b, 95))


def test_empty_cases_and_counts():
    empty = np.zeros((20, 24), np.int64)
    sq = square(3, 3, 10)
    preds = [empty, empty, sq, sq]
    trues = [empty, sq, empty, sq]
    out = mask_metrics(preds, trues, num_classes=2)
    fg = out["per_class"]["foreground"]
    np.testing.assert_allclose(out["per_image"]["dice"][:, 0], [1.0, 0.0, 0.0, 1.0])
    assert fg["dice"] == pytest.approx(0.5) and fg["iou"] == pytest.approx(0.5)
    assert np.isnan(out["per_image"]["hd95"][:3, 0]).all()
    assert fg["hd95"] == pytest.approx(0.0) and fg["n_hd95"] == 1  # undefined values left out of the mean
    assert (fg["both_empty"], fg["empty_pred"], fg["empty_true"], fg["n_images"]) == (1, 1, 1, 4)
    only_empty = mask_metrics([empty], [sq], num_classes=2)
    assert only_empty["dice"] == 0.0 and math.isnan(only_empty["hd95"])


def test_multiclass_per_class_and_mean():
    true = square(2, 2, 6) + square(10, 12, 6, value=2)
    pred = square(2, 2, 6) + square(10, 14, 6, value=2)  # class 1 perfect, class 2 shifted 2 px: overlap 6×4
    out = mask_metrics(np.stack([pred]), np.stack([true]), num_classes=3, class_names=["bg", "a", "b"])
    assert out["per_class"]["a"]["dice"] == pytest.approx(1.0)
    assert out["per_class"]["b"]["dice"] == pytest.approx(2 * 24 / 72)
    assert out["per_class"]["b"]["iou"] == pytest.approx(24 / 48)
    assert out["dice"] == pytest.approx((1 + 48 / 72) / 2)
    assert out["per_class"]["a"]["hd95"] == 0.0 and out["per_class"]["b"]["hd95"] == pytest.approx(2.0)
    assert out["per_image"]["dice"].shape == (1, 2)


def test_input_errors():
    sq = square(3, 3, 10)
    with pytest.raises(DataError, match="differ in size"):
        mask_metrics([sq], [sq[:10]], num_classes=2)
    with pytest.raises(DataError, match=r"true_masks\[0\]: value 2 is not a class index 0\.\.1"):
        mask_metrics([sq], [sq * 2], num_classes=2)
    with pytest.raises(DataError, match="1 predicted masks but 2"):
        mask_metrics([sq], [sq, sq], num_classes=2)
    with pytest.raises(ConfigError, match="num_classes"):
        mask_metrics([sq], [sq], num_classes=1)


def test_bootstrap_brackets_the_mean():
    scores = np.random.default_rng(0).uniform(0.5, 1.0, 40)
    out = bootstrap_mean(scores, n_resamples=500, seed=3)
    assert out["value"] == pytest.approx(scores.mean()) and out["n"] == 40
    assert out["ci_low"] < out["value"] < out["ci_high"]
    assert out["ci_high"] - out["ci_low"] < 0.2
    assert bootstrap_mean(scores, n_resamples=500, seed=3) == out  # reproducible
    with_nan = bootstrap_mean(np.append(scores, np.nan), n_resamples=200)
    assert with_nan["n"] == 40 and with_nan["value"] == pytest.approx(scores.mean())
    two_cols = bootstrap_mean(np.stack([scores, scores + 0.1], axis=1), n_resamples=200)
    assert two_cols["value"] == pytest.approx(scores.mean() + 0.05)
    assert math.isnan(bootstrap_mean([np.nan])["value"])


def test_dice_per_image_of_masks_of_different_sizes():
    a, b = np.zeros((4, 6), np.uint8), np.zeros((3, 3), np.uint8)
    a[:2, :3] = 1  # 6 pixels
    b[0, 0] = 1
    true_a, true_b = np.zeros((4, 6), np.uint8), np.zeros((3, 3), np.uint8)
    true_a[:2, :2] = 1  # 4 pixels, all inside the prediction: Dice 2·4 / (6 + 4)
    true_b[2, 2] = 1  # no overlap
    np.testing.assert_allclose(dice_per_image([a, b], [true_a, true_b], 2)[:, 0], [0.8, 0.0])
