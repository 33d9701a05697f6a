import numpy as np

from medtransfer.metrics import bootstrap_metrics, classification_metrics


def test_binary_metrics_known_values():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.9])  # one inversion out of four pairs
    m = classification_metrics(np.stack([1 - p1, p1], 1), y, "binary")
    assert m["auc"] == 0.75
    assert m["accuracy"] == 0.5 and m["sensitivity"] == 0.5 and m["specificity"] == 0.5


def test_multiclass_and_multilabel_auc():
    y = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[y] * 0.8 + 0.1
    assert classification_metrics(probs, y, "multiclass")["auc"] == 1.0
    yl = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert classification_metrics(yl * 0.9 + 0.05, yl, "multilabel")["auc"] == 1.0


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
