import numpy as np
import pytest

from medtransfer.metrics import bootstrap_metrics, label_metrics


def test_binary_metrics_known_values():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.9])  # one inversion out of four pairs
    m = label_metrics(np.stack([1 - p1, p1], 1), y, "binary")
    assert m["auc"] == 0.75
    assert m["accuracy"] == 0.5 and m["sensitivity"] == 0.5 and m["specificity"] == 0.5


def test_multiclass_and_multilabel_auc():
    y = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[y] * 0.8 + 0.1
    assert label_metrics(probs, y, "multiclass")["auc"] == 1.0
    yl = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert label_metrics(yl * 0.9 + 0.05, yl, "multilabel")["auc"] == 1.0


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(0)

    def sample(n):
        y = rng.integers(0, 2, n)
        p = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
        return np.stack([1 - p, p], 1), y

    small = bootstrap_metrics(*sample(60), "binary", n_resamples=300)
    large = bootstrap_metrics(*sample(600), "binary", n_resamples=300)
    for m in (small, large):
        assert m["auc"]["ci_low"] <= m["auc"]["value"] <= m["auc"]["ci_high"]
    width = lambda m: m["auc"]["ci_high"] - m["auc"]["ci_low"]  # noqa: E731
    assert width(large) < width(small) / 2


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_vectorised_bootstrap_scores_each_resample_like_the_plain_metrics(kind):
    from medtransfer.metrics.paired import resample_cases

    rng = np.random.default_rng(1)
    n = 80
    if kind == "binary":
        y = rng.integers(0, 2, n)
        p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
        probs = np.stack([1 - p, p], 1)
    elif kind == "multiclass":
        y = rng.integers(0, 3, n)
        probs = rng.dirichlet([1, 1, 1], n) * 0.6 + np.eye(3)[y] * 0.4
    else:
        y = rng.integers(0, 2, (n, 3))
        probs = np.clip(y * 0.3 + rng.random((n, 3)) * 0.7, 0, 1)
    point = label_metrics(probs, y, kind)
    boot = bootstrap_metrics(probs, y, kind, n_resamples=50, seed=3)
    for k, v in point.items():
        assert boot[k]["value"] == pytest.approx(v), k
    idx = resample_cases(n, 50, 3)[7]  # one resample, scored the plain way, lies inside the spread
    plain = label_metrics(probs[idx], y[idx], kind)
    for k in point:
        assert boot[k]["ci_low"] - 0.2 <= plain[k] <= boot[k]["ci_high"] + 0.2
