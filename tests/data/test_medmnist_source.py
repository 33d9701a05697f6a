import numpy as np
import pytest

from medtransfer.data import open_source, read_source
from medtransfer.data.sources.medmnist import MedMNISTSource
from medtransfer.errors import DataError


def _write_npz(path, n=(12, 4, 6), shape=(28, 28), labels=1, num_classes=2):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, *shape), dtype=np.uint8)
        if labels == 1:
            arrays[f"{split}_labels"] = (np.arange(k) % num_classes).reshape(k, 1)
        else:
            arrays[f"{split}_labels"] = rng.integers(0, 2, (k, labels))
    np.savez(path, **arrays)
    return path


def test_reads_a_medmnist_file_with_its_split(tmp_path):
    data = read_source(_write_npz(tmp_path / "breastmnist.npz"))
    assert data.name == "breastmnist" and data.class_names == ["malignant", "normal, benign"]
    assert [s.split for s in data.samples].count("val") == 4
    img = data.samples[0].load()
    assert img.dtype == np.uint8 and img.shape == (28, 28)


def test_rgb_multiclass_and_multilabel_files(tmp_path):
    rgb = read_source(_write_npz(tmp_path / "mydata.npz", shape=(28, 28, 3), num_classes=4))
    assert rgb.label_kind == "multiclass" and rgb.num_classes == 4 and rgb.samples[0].load().shape == (28, 28, 3)
    ml = read_source(_write_npz(tmp_path / "other.npz", labels=5))
    assert ml.label_kind == "multilabel" and ml.targets().shape == (22, 5)


def test_names_resolve_through_the_medmnist_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    _write_npz(tmp_path / "pneumoniamnist.npz")
    src = open_source("pneumoniamnist")
    assert isinstance(src, MedMNISTSource)
    assert src.read().modality == "chest X-ray"
    with pytest.raises(DataError, match="did you mean 'breastmnist'"):
        open_source("breastmnst").read()
    with pytest.raises(DataError, match="3D"):
        open_source("organmnist3d").read()


def test_broken_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz"):
        read_source(bad)
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match="missing arrays"):
        read_source(tmp_path / "partial.npz")


def test_real_breastmnist_official_split(breastmnist):
    data = read_source(breastmnist)
    splits = [s.split for s in data.samples]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (546, 78, 156)
    t = data.targets()[[i for i, s in enumerate(splits) if s == "test"]]
    assert np.bincount(t).tolist() == [42, 114]
