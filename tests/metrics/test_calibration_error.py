"""The expected calibration error against hand-computed values."""

import numpy as np
import pytest

from medtransfer.metrics.calibration import expected_calibration_error, reliability_bins


def test_ece_of_a_hand_computed_example():
    # confidences 0.9, 0.9 (one right, one wrong) and 0.6 (right): bins |0.5 - 0.9| * 2/3 + |1 - 0.6| * 1/3
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6]])
    targets = np.array([1, 1, 1])
    assert expected_calibration_error(probs, targets, "binary") == pytest.approx(0.4 * 2 / 3 + 0.4 / 3)
    bins = reliability_bins(probs, targets, "binary")
    assert bins.counts.sum() == 3 and np.nansum(bins.accuracy * bins.counts) == pytest.approx(2)


def test_perfectly_calibrated_cases_have_no_error():
    rng = np.random.default_rng(0)
    conf = np.full(20000, 0.7)
    correct = rng.random(20000) < 0.7
    probs = np.stack([conf, 1 - conf], 1)
    targets = np.where(correct, 0, 1)
    assert expected_calibration_error(probs, targets, "binary") < 0.01
    # multi-label: each label on its own
    ml = np.stack([np.full(20000, 0.3), np.full(20000, 0.8)], 1)
    y = np.stack([rng.random(20000) < 0.3, rng.random(20000) < 0.8], 1).astype(int)
    assert expected_calibration_error(ml, y, "multilabel") < 0.01
    assert expected_calibration_error(ml, 1 - y, "multilabel") > 0.3
