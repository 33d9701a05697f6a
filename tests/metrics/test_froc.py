"""FROC against a hand-computed example: two images, three true boxes, six detections."""

import numpy as np
import pytest

from medtransfer.metrics.froc import froc, froc_curve, match_image

TRUTHS = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[5, 5, 15, 15]])]
# image A: d1 finds T1; d2 finds T1 again (a false positive); d6's centre is in T2 but its IoU is 0.31; d3 misses
# image B: d5 misses; d4 finds T3
DETECTIONS = [
    (np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [18, 18, 36, 36]]), np.array([0.9, 0.8, 0.3, 0.5])),
    (np.array([[5, 5, 15, 15], [40, 40, 50, 50]]), np.array([0.6, 0.7])),
]


def test_curve_by_hand():
    # ranked: d1 .9 hit, d2 .8 FP, d5 .7 FP, d4 .6 hit, d6 .5 FP (IoU 0.31), d3 .3 FP
    fp, sens = froc_curve(DETECTIONS, TRUTHS)
    np.testing.assert_allclose(fp, [0, 0, 0.5, 1, 1, 1.5, 2])
    np.testing.assert_allclose(sens, [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_sensitivities_and_cpm_by_hand():
    out = froc(DETECTIONS, TRUTHS)
    assert out["sens@0.5"] == pytest.approx(1 / 3) and out["sens@1"] == pytest.approx(2 / 3)
    assert out["cpm"] == pytest.approx((3 * (1 / 3) + 4 * (2 / 3)) / 7)  # 11/21
    centre = froc(DETECTIONS, TRUTHS, hit="centre")  # d6's centre lies in T2: a hit, so all three are found at 1 FP
    assert centre["sens@0.5"] == pytest.approx(1 / 3) and centre["sens@1"] == pytest.approx(1.0)
    assert centre["cpm"] == pytest.approx(5 / 7)


def test_classes_must_agree_and_a_box_is_found_once():
    hits = match_image([[5, 5, 15, 15]], [0.6], [[5, 5, 15, 15]], labels=[1], true_labels=[0])
    assert hits.tolist() == [False]
    hits = match_image([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.9], [[0, 0, 10, 10]])
    assert hits.tolist() == [False, True]  # the better-scored duplicate takes the box
    assert froc([(np.zeros((0, 4)), np.zeros(0))], [np.array([[0, 0, 5, 5]])])["cpm"] == 0.0
