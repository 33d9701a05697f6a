"""Image folders: class layout, split layout, what is skipped, and the errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from generated import gray_dicom
from PIL import Image

from medtransfer.data.sources.folder import ImageFolderSource
from medtransfer.errors import DataError


def png(path: Path, value: int = 0, size: tuple[int, int] = (5, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)
    return path


def dicom_without_suffix(path: Path) -> Path:
    """A small 16-bit DICOM file named without a suffix, as PACS exports often are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = gray_dicom(2, 2, np.array([[0, 100], [200, 300]]))
    ds.save_as(path, enforce_file_format=True)
    return path


def test_class_layout(tmp_path: Path) -> None:
    png(tmp_path / "normal" / "a.png", 10)
    png(tmp_path / "normal" / "b.PNG", 20)
    png(tmp_path / "benign" / "c.jpg", 30)
    png(tmp_path / "malignant" / "patient7" / "d.bmp", 40)  # nested folders are searched
    (tmp_path / "normal" / "notes.txt").write_text("ignored")
    (tmp_path / "normal" / "Thumbs.db").write_bytes(b"\0")
    png(tmp_path / "normal" / ".hidden.png")
    png(tmp_path / ".cache" / "x.png")
    png(tmp_path / "benign" / ".ipynb_checkpoints" / "y.png")

    data = ImageFolderSource(tmp_path).read()
    assert data.class_names == ["benign", "malignant", "normal"]
    assert data.label_kind == "multiclass"
    assert data.name == tmp_path.name
    by_name = {Path(s.ref).name: s for s in data.samples}
    assert set(by_name) == {"a.png", "b.PNG", "c.jpg", "d.bmp"}
    assert by_name["c.jpg"].target == 0 and by_name["d.bmp"].target == 1 and by_name["a.png"].target == 2
    assert all(s.split is None and s.patient_id is None for s in data.samples)
    assert Path(by_name["a.png"].ref) == tmp_path / "normal" / "a.png"
    image = by_name["b.PNG"].load()
    assert image.dtype == np.uint8 and image.shape == (5, 6) and (image == 20).all()


def test_split_layout_with_aliases_and_dicom(tmp_path: Path) -> None:
    png(tmp_path / "train" / "no" / "1.png")
    png(tmp_path / "train" / "yes" / "2.png")
    png(tmp_path / "validation" / "no" / "3.png")
    dicom_without_suffix(tmp_path / "validation" / "yes" / "IM0001")
    png(tmp_path / "test" / "yes" / "5.tif")
    png(tmp_path / "test" / "no" / "6.tiff")

    data = ImageFolderSource(tmp_path).read()
    assert data.class_names == ["no", "yes"] and data.label_kind == "binary"
    splits = {Path(s.ref).name: (s.split, s.target) for s in data.samples}
    assert splits == {
        "1.png": ("train", 0), "2.png": ("train", 1), "3.png": ("val", 0),
        "IM0001": ("val", 1), "5.tif": ("test", 1), "6.tiff": ("test", 0),
    }
    dcm = next(s for s in data.samples if s.ref.endswith("IM0001"))
    assert dcm.load().tolist() == [[0, 85], [170, 255]]


def test_window_is_passed_to_the_loader_and_loaders_pickle(tmp_path: Path) -> None:
    dicom_without_suffix(tmp_path / "a" / "IM1")
    png(tmp_path / "b" / "x.png")
    data = ImageFolderSource(tmp_path, window=(100, 200)).read()
    sample = next(s for s in data.samples if s.ref.endswith("IM1"))
    assert sample.load().tolist() == [[0, 128], [255, 255]]
    assert pickle.loads(pickle.dumps(sample.load))().tolist() == [[0, 128], [255, 255]]


def test_can_open(tmp_path: Path) -> None:
    png(tmp_path / "ds" / "a" / "1.png")
    png(tmp_path / "split" / "train" / "a" / "1.png")
    png(tmp_path / "seg" / "images" / "1.png")
    png(tmp_path / "seg" / "masks" / "1.png")
    (tmp_path / "textonly" / "a").mkdir(parents=True)
    (tmp_path / "textonly" / "a" / "x.txt").write_text("x")
    png(tmp_path / "flat" / "1.png")
    assert ImageFolderSource.can_open(str(tmp_path / "ds"))
    assert ImageFolderSource.can_open(str(tmp_path / "split"))
    assert not ImageFolderSource.can_open(str(tmp_path / "seg"))
    assert not ImageFolderSource.can_open(str(tmp_path / "textonly"))
    assert not ImageFolderSource.can_open(str(tmp_path / "flat"))
    assert not ImageFolderSource.can_open(str(tmp_path / "missing"))
    assert not ImageFolderSource.can_open(str(tmp_path / "ds" / "a" / "1.png"))


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    png(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"[/\\]b: class folder holds no images"):
        ImageFolderSource(tmp_path).read()


def test_empty_class_folder_in_a_split_is_named(tmp_path: Path) -> None:
    png(tmp_path / "train" / "a" / "1.png")
    png(tmp_path / "train" / "b" / "1.png")
    (tmp_path / "test" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match=r"test[/\\]b: class folder holds no images"):
        ImageFolderSource(tmp_path).read()


def test_folder_without_class_folders(tmp_path: Path) -> None:
    png(tmp_path / "1.png")
    with pytest.raises(DataError, match=rf"{tmp_path.name}: no class folders"):
        ImageFolderSource(tmp_path).read()
    png(tmp_path / "train" / "1.png")
    with pytest.raises(DataError, match=r"train: no class folders"):
        ImageFolderSource(tmp_path).read()


def test_missing_folder_and_single_class(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: no such folder"):
        ImageFolderSource(tmp_path / "nowhere").read()
    png(tmp_path / "only" / "1.png")
    with pytest.raises(DataError, match=r"only one class folder \('only'\)"):
        ImageFolderSource(tmp_path).read()


def test_mixed_split_and_class_folders(tmp_path: Path) -> None:
    png(tmp_path / "train" / "a" / "1.png")
    png(tmp_path / "cats" / "1.png")
    with pytest.raises(DataError, match=r"mixes split folders \(train\) with other folders \(cats\)"):
        ImageFolderSource(tmp_path).read()


def test_two_folders_for_one_split(tmp_path: Path) -> None:
    png(tmp_path / "val" / "a" / "1.png")
    png(tmp_path / "valid" / "a" / "1.png")
    with pytest.raises(DataError, match=r"both val/ and valid/ are the 'val' split"):
        ImageFolderSource(tmp_path).read()
