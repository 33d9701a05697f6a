import numpy as np
import pytest

from medtransfer.data import make_split, training_subset
from medtransfer.data.sources.base import LabelledImages, Sample
from medtransfer.errors import DataError


def _data(targets, splits=None, patients=None, names=("a", "b")) -> LabelledImages:
    samples = [
        Sample(ref=f"img{i}", load=lambda: np.zeros((4, 4), np.uint8), target=int(t),
               split=None if splits is None else splits[i], patient_id=None if patients is None else patients[i])
        for i, t in enumerate(targets)
    ]
    return LabelledImages(samples=samples, class_names=list(names), label_kind="binary", name="toy")


def test_seeded_split_is_stratified_grouped_and_reproducible():
    rng = np.random.default_rng(0)
    patients = [f"p{i // 3}" for i in range(300)]  # 3 images per patient
    targets = [int(p[1:]) % 3 == 0 for p in patients]
    data = _data(targets, patients=patients)
    s1, s2 = make_split(data, seed=4), make_split(data, seed=4)
    assert all(np.array_equal(getattr(s1, k), getattr(s2, k)) for k in ("train", "val", "test"))
    assert not s1.given
    by_split = {k: {patients[i] for i in getattr(s1, k)} for k in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"] or by_split["val"] & by_split["test"])
    assert len(s1.train) + len(s1.val) + len(s1.test) == 300
    assert abs(len(s1.test) / 300 - 0.2) < 0.05 and abs(len(s1.val) / 300 - 0.1) < 0.05
    t = np.asarray(targets)
    assert abs(t[s1.test].mean() - t.mean()) < 0.08  # stratified
    assert not np.array_equal(make_split(data, seed=5).test, s1.test)
    del rng


def test_given_split_is_kept():
    splits = ["train"] * 20 + ["val"] * 5 + ["test"] * 5
    data = _data([i % 2 for i in range(30)], splits=splits)
    s = make_split(data, seed=0)
    assert s.given and list(s.val) == list(range(20, 25)) and list(s.test) == list(range(25, 30))


def test_fractions_are_nested_stratified_and_leave_val_test_alone():
    data = _data([int(i % 4 == 0) for i in range(200)])
    s = make_split(data, seed=0)
    subsets = {f: set(training_subset(data, s.train, f, seed=1)) for f in (0.1, 0.25, 0.5, 1.0)}
    assert subsets[0.1] < subsets[0.25] < subsets[0.5] < subsets[1.0] == set(s.train)
    t = data.targets()
    for f, sub in subsets.items():
        assert abs(t[list(sub)].mean() - t[s.train].mean()) < 0.06
        assert abs(len(sub) - f * len(s.train)) <= 2
    assert set(training_subset(data, s.train, 0.25, seed=2)) != subsets[0.25]


def test_label_only_in_test_is_named():
    splits = ["train"] * 10 + ["val"] * 4 + ["test"] * 6
    targets = [0, 1] * 5 + [0, 1] * 2 + [2] * 6
    with pytest.raises(DataError, match=r"label 'c' appears only in the test split \(6 images\)"):
        make_split(_data(targets, splits=splits, names=("a", "b", "c")))


def test_class_without_training_example_is_named():
    splits = ["train"] * 10 + ["val"] * 4 + ["test"] * 6
    targets = [0] * 10 + [1] * 4 + [1] * 6
    with pytest.raises(DataError, match=r"class 'b' has no training example \(val 4, test 6\)"):
        make_split(_data(targets, splits=splits))
