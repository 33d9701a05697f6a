"""CSV manifests: single- and multi-label, splits, patients, paths, and every error message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtransfer.data.sources.csv_manifest import CsvManifestSource
from medtransfer.errors import DataError


def png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 5), value, dtype=np.uint8)).save(path)
    return path


def manifest(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i in range(4):
        png(tmp_path / "img" / f"{i}.png", value=10 * i)
    return tmp_path


def test_single_label_with_split_and_patient(images: Path) -> None:
    csv = manifest(images, """
path,label,split,patient_id
img/0.png,pneumonia,train,p1
img/1.png,normal,Validation,p1
img/2.png,covid,test,p2
img/3.png,normal,,
""")
    data = CsvManifestSource(csv).read()
    assert data.class_names == ["covid", "normal", "pneumonia"]
    assert data.label_kind == "multiclass" and data.name == "data"
    assert [s.target for s in data.samples] == [2, 1, 0, 1]
    assert [s.split for s in data.samples] == ["train", "val", "test", None]
    assert [s.patient_id for s in data.samples] == ["p1", "p1", "p2", None]
    assert Path(data.samples[0].ref) == images / "img" / "0.png"
    assert (data.samples[2].load() == 20).all()


def test_integer_labels_sort_numerically_and_absolute_paths(images: Path, tmp_path: Path) -> None:
    sub = tmp_path / "meta"
    sub.mkdir()
    csv = manifest(sub, f"""
path,label
{images / 'img' / '0.png'},10
{images / 'img' / '1.png'},2
{images / 'img' / '2.png'},10
""")
    data = CsvManifestSource(csv).read()
    assert data.class_names == ["2", "10"] and data.label_kind == "binary"
    assert [s.target for s in data.samples] == [1, 0, 1]


def test_custom_columns_semicolons_bom_and_blank_lines(images: Path) -> None:
    csv = images / "x.csv"
    csv.write_text("\ufefffile;diagnosis\n\nimg/0.png;a\nimg/1.png;b\n\n", encoding="utf-8")
    data = CsvManifestSource(csv, label_column="diagnosis", path_column="file").read()
    assert data.class_names == ["a", "b"] and len(data.samples) == 2


def test_multilabel_explicit_columns(images: Path) -> None:
    csv = manifest(images, """
path,effusion,nodule,mass,split
img/0.png,1,0,1,train
img/1.png,0,0,0,test
""")
    data = CsvManifestSource(csv, label_columns=["effusion", "mass"]).read()
    assert data.label_kind == "multilabel" and data.class_names == ["effusion", "mass"]
    assert [s.target for s in data.samples] == [(1, 1), (0, 0)]
    assert data.targets().shape == (2, 2)


def test_multilabel_detected_without_label_column(images: Path) -> None:
    csv = manifest(images, """
path,patient_id,effusion,nodule,age
img/0.png,1,1,0,63
img/1.png,0,0,1,1
""")
    data = CsvManifestSource(csv).read()
    assert data.label_kind == "multilabel" and data.class_names == ["effusion", "nodule"]
    assert [s.target for s in data.samples] == [(1, 0), (0, 1)]


def test_can_open(images: Path) -> None:
    csv = manifest(images, "path,label\nimg/0.png,a\n", name="M.CSV")
    assert CsvManifestSource.can_open(str(csv))
    assert not CsvManifestSource.can_open(str(images / "nothing.csv"))
    assert not CsvManifestSource.can_open(str(images / "img" / "0.png"))


# -- errors --------------------------------------------------------------------------------------------------
def test_no_label_column_lists_columns(images: Path) -> None:
    csv = manifest(images, "path,diagnosis,age\nimg/0.png,a,40\nimg/1.png,b,50\n")
    with pytest.raises(DataError) as err:
        CsvManifestSource(csv).read()
    msg = str(err.value)
    assert msg.startswith(f"{csv}: no 'label' column")
    assert "columns: path, diagnosis, age" in msg and "--label-column" in msg


def test_one_binary_column_is_not_multilabel(images: Path) -> None:
    csv = manifest(images, "path,sick\nimg/0.png,1\nimg/1.png,0\n")
    with pytest.raises(DataError, match=r"data\.csv: no 'label' column .*--label-column"):
        CsvManifestSource(csv).read()


def test_no_path_column(images: Path) -> None:
    csv = manifest(images, "file_name,label\nimg/0.png,a\n")
    with pytest.raises(DataError, match=r"data\.csv: no 'path' column .*columns: file_name, label"):
        CsvManifestSource(csv).read()


def test_empty_label_cell(images: Path) -> None:
    csv = manifest(images, "path,label\nimg/0.png,a\nimg/1.png,b\nimg/2.png, \n")
    with pytest.raises(DataError, match=r"data\.csv, line 4: empty 'label' cell"):
        CsvManifestSource(csv).read()


def test_empty_path_cell(images: Path) -> None:
    csv = manifest(images, "path,label\nimg/0.png,a\n,b\n")
    with pytest.raises(DataError, match=r"data\.csv, line 3: empty 'path' cell"):
        CsvManifestSource(csv).read()


def test_unknown_split(images: Path) -> None:
    csv = manifest(images, "path,label,split\nimg/0.png,a,train\nimg/1.png,b,training\n")
    with pytest.raises(DataError) as err:
        CsvManifestSource(csv).read()
    msg = str(err.value)
    assert msg.startswith(f"{csv}, line 3: unknown split 'training'")
    assert "allowed: train, val, test" in msg


def test_missing_images_reports_first_and_count(images: Path) -> None:
    csv = manifest(images, "path,label\nimg/0.png,a\nimg/gone.png,b\nimg/1.png,a\nimg/also-gone.png,b\n")
    with pytest.raises(DataError) as err:
        CsvManifestSource(csv).read()
    msg = str(err.value)
    assert msg.startswith(f"{csv}, line 3: image 'img/gone.png' not found")
    assert "2 of 4 listed images are missing" in msg


def test_multilabel_cell_not_binary(images: Path) -> None:
    csv = manifest(images, "path,effusion,mass\nimg/0.png,1,0\nimg/1.png,0,yes\n")
    with pytest.raises(DataError, match=r"data\.csv, line 3, column 'mass': 'yes' is not 0 or 1"):
        CsvManifestSource(csv, label_columns=["effusion", "mass"]).read()


def test_unknown_multilabel_column(images: Path) -> None:
    csv = manifest(images, "path,effusion,mass\nimg/0.png,1,0\n")
    with pytest.raises(DataError, match=r"data\.csv: no label column 'masses' \(did you mean 'mass'\?\)"):
        CsvManifestSource(csv, label_columns=["effusion", "masses"]).read()


def test_line_numbers_count_quoted_newlines_and_blank_lines(images: Path) -> None:
    csv = manifest(images, 'path,label,note\nimg/0.png,a,"two\nlines"\n\nimg/1.png,b,x\nimg/2.png,,y\n')
    with pytest.raises(DataError, match=r"data\.csv, line 6: empty 'label' cell"):
        CsvManifestSource(csv).read()


def test_ragged_row_empty_file_and_single_class(images: Path) -> None:
    csv = manifest(images, "path,label\nimg/0.png,a,extra\n")
    with pytest.raises(DataError, match=r"data\.csv, line 2: 3 values but the header has 2 columns"):
        CsvManifestSource(csv).read()
    csv = manifest(images, "", name="empty.csv")
    with pytest.raises(DataError, match=r"empty\.csv: the CSV is empty"):
        CsvManifestSource(csv).read()
    csv = manifest(images, "path,label\nimg/0.png,a\nimg/1.png,a\n", name="one.csv")
    with pytest.raises(DataError, match=r"one\.csv: column 'label' holds a single class \('a'\)"):
        CsvManifestSource(csv).read()
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        CsvManifestSource(images / "nope.csv").read()
