"""Malformed and misleading box annotations: each is one message naming the file and the annotation, exit code 2,
no traceback and nothing left in the output folder; never a phantom class or a class that trains without data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from generated import run_cli
from PIL import Image

from medtransfer import RunConfig
from medtransfer.data.sources.boxes import BoxCsvSource, CocoSource, VocSource
from medtransfer.errors import DataError
from medtransfer.engine import prepare_data

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "4", "--task-option", "fpn_channels=8", "--quiet"]


def _jpeg(path: Path, w: int = 48, h: int = 40) -> None:
    """Noise seeded by the file's name: no two images alike (the split audit refuses repeated images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(list(path.name.encode()))
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _voc(root: Path, objects: dict[str, str], splits: dict[str, list[str]] | None = None) -> Path:
    """``objects``: image stem -> the XML of its ``<object>`` elements, written as given."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for stem, body in objects.items():
        _jpeg(root / "JPEGImages" / f"{stem}.jpg")
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename>{body}</annotation>")
    for name, stems in (splits or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(stems) + "\n")
    return root


def _object(name: str, corners=(2, 3, 20, 30)) -> str:
    xmin, ymin, xmax, ymax = corners
    return (f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
            f"<ymax>{ymax}</ymax></bndbox></object>")


def _coco(tmp_path: Path, **changes) -> Path:
    """A valid two-image COCO file with ``changes`` applied to its top level (a value None removes the key)."""
    _jpeg(tmp_path / "x.jpg")
    _jpeg(tmp_path / "y.jpg")
    doc = {"images": [{"id": 1, "file_name": "x.jpg"}, {"id": 2, "file_name": "y.jpg"}],
           "categories": [{"id": 1, "name": "cell"}],
           "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5]}]}
    doc.update(changes)
    doc = {k: v for k, v in doc.items() if v is not None}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    return tmp_path / "c.json"


def _assert_refused(args: list, out: Path, capsys, *needles: str) -> None:
    code, _, err = run_cli(["train", "--task", "detection", *args, "--out", out, *QUICK], capsys)
    text = " ".join(err.split())  # rich may wrap long lines
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    left = [p.name for p in out.parent.iterdir() if p.name.startswith((out.name, f".{out.name}"))]
    assert left == [], left


# -- 2: one name, two COCO categories ---------------------------------------------------------------------------------
def test_two_coco_categories_with_one_name_are_refused_naming_their_ids(tmp_path, capsys):
    path = _coco(tmp_path, categories=[{"id": 1, "name": "cell"}, {"id": 2, "name": "blob"},
                                       {"id": 3, "name": "cell"}])
    _assert_refused(["--data", path], tmp_path / "r", capsys, "c.json", "ids 1, 3", "'cell'")


def test_coco_category_names_differing_only_in_case_are_refused(tmp_path):
    path = _coco(tmp_path, categories=[{"id": 1, "name": "cell"}, {"id": 2, "name": "Cell "}])
    with pytest.raises(DataError, match=r"'cell' \(category 1\) and 'Cell' \(category 2\) differ only in case"):
        CocoSource(path).read()


def test_voc_labels_differing_only_in_case_are_refused(tmp_path):
    root = _voc(tmp_path / "v", {"a": _object("tumour"), "b": _object("Tumour")})
    with pytest.raises(DataError, match=r"'tumour' \(.*a\.xml, object 1\) and 'Tumour' \(.*b\.xml, object 1\)"):
        VocSource(root).read()


# -- 3: a class without training data ---------------------------------------------------------------------------------
def test_a_voc_class_only_in_the_given_validation_split_is_refused_before_training(tmp_path, capsys):
    stems = [f"i{k}" for k in range(12)]
    objects = {s: _object("cell") for s in stems}
    objects["i8"] += _object("tumour", (25, 5, 40, 20))  # i8 is in val
    root = _voc(tmp_path / "v", objects, {"train": stems[:8], "val": stems[8:10], "test": stems[10:]})
    _assert_refused(["--data", root], tmp_path / "r", capsys, "class 'tumour' has no training example (val 1, test 0)",
                    "the train and test splits hold no boxes of it")


def test_a_box_csv_class_only_in_the_given_test_split_is_refused(tmp_path, capsys):
    rows = ["image,x1,y1,x2,y2,label,split"]
    for k in range(12):
        _jpeg(tmp_path / f"i{k}.jpg")
        split = "train" if k < 8 else "val" if k < 10 else "test"
        rows.append(f"i{k}.jpg,2,3,20,30,cell,{split}")
    rows.append("i11.jpg,25,5,40,20,tumour,test")
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    _assert_refused(["--data", tmp_path / "boxes.csv"], tmp_path / "r", capsys,
                    "label 'tumour' appears only in the test split (1 boxes)")


def test_unused_coco_categories_are_left_out_of_the_classes_with_a_notice(tmp_path):
    path = _coco(tmp_path, categories=[{"id": 0, "name": "cells-dataset", "supercategory": "none"},
                                       {"id": 1, "name": "cell", "supercategory": "cells-dataset"}])
    data = CocoSource(path).read()
    assert data.class_names == ["cell"] and data.samples[0].labels == (0,)
    assert "1 category without boxes left out of the classes: 0 'cells-dataset'." in data.notices


# -- 8: malformed annotations -----------------------------------------------------------------------------------------
def test_a_voc_corner_that_is_not_a_number(tmp_path, capsys):
    root = _voc(tmp_path / "v", {"a": _object("cell"), "b": _object("cell") + _object("cell", (1, 1, "abc", 9))})
    _assert_refused(["--data", root], tmp_path / "r", capsys, "b.xml, object 2: <xmax> is 'abc', not a number")


@pytest.mark.parametrize(("changes", "needles"), [
    ({"annotations": [{"id": 10, "image_id": 1, "category_id": 1}]}, ("c.json, annotation 10: no 'bbox'",)),
    ({"annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]},
     ("c.json, annotation 10: bbox [1, 2, 3] is not four finite numbers",)),
    ({"images": {"1": "x.jpg"}}, ("c.json: 'images' is an object, not a list",)),
    ({"images": None}, ("c.json: no 'images'", "'annotations', 'categories'", "all three")),
], ids=["no-bbox", "3-number-bbox", "images-dict", "no-images"])
def test_malformed_coco_files_are_refused_naming_the_annotation(tmp_path, capsys, changes, needles):
    _assert_refused(["--data", _coco(tmp_path, **changes)], tmp_path / "r", capsys, *needles)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 1, "2", 2]}]},
     r"c\.json, annotations\[0\]: bbox \[1, 1, '2', 2\] is not four finite numbers"),
    ({"annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
                      {"id": 4, "image_id": 1, "category_id": 1}]}, r"c\.json, annotations\[1\] \(id 4\): no 'bbox'"),
    ({"annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10 ** 400, 2]}]},
     r"annotation 4: bbox \[1, 1, \d+\.\.\.\d+, 2\] is not four finite numbers"),
    ({"annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": "yes"}]},
     r"annotation 4: iscrowd 'yes' is not 0 or 1"),
    ({"annotations": [{"id": 4, "category_id": 1, "bbox": [1, 1, 2, 2]}]}, r"annotation 4: no 'image_id'"),
    ({"annotations": [[1, 1, 2, 2]]}, r"c\.json, annotations\[0\]: a list, not an object"),
    ({"annotations": [{"id": 4, "image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2]}]},
     r"annotation 4: image_id \[1\] is not among the images"),
    ({"images": [{"id": 1, "file_name": "x.jpg"}, {"id": 1, "file_name": "y.jpg"}]},
     r"images\[0\] and images\[1\] share the id 1"),
    ({"images": [{"id": 1}]}, r"c\.json, image 1: 'file_name' is None"),
    ({"categories": [{"id": 1, "name": ""}]}, r"c\.json, category 1: 'name' is ''"),
    ({"categories": [{"id": 1, "name": "cell"}, {"id": 1, "name": "blob"}]},
     r"categories\[0\] and categories\[1\] share the id 1"),
    ({"categories": []}, r"'categories' is empty"),
], ids=["string-in-bbox", "shared-annotation-id", "huge-integer", "iscrowd", "no-image-id", "annotation-list",
        "unhashable-id", "shared-image-id", "no-file-name", "empty-name", "shared-category-id", "no-categories"])
def test_every_part_of_a_coco_file_is_checked(tmp_path, changes, needle):
    with pytest.raises(DataError, match=needle):
        CocoSource(_coco(tmp_path, **changes)).read()


@pytest.mark.parametrize(("text", "needle"), [
    (json.dumps([{"images": []}]), "c.json: the file holds a list; a COCO file is an object"),
    (json.dumps({"imgs": []}), "c.json: no 'images' or 'annotations' or 'categories'"),
    ('{"images": [', "c.json: not a readable JSON file"),
], ids=["list", "no-coco-key", "truncated"])
def test_a_json_file_that_is_no_coco_file_says_why(tmp_path, capsys, text, needle):
    path = tmp_path / "c.json"
    path.write_text(text)
    _assert_refused(["--data", path], tmp_path / "r", capsys, needle)


@pytest.mark.parametrize(("body", "needle"), [
    ("<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>",
     r"a\.xml, object 1: no <name>"),
    (_object(" "), r"a\.xml, object 1: no <name>"),
    (_object("cell", (1, "", 5, 5)), r"a\.xml, object 1: <ymin> is '', not a number"),
    ("<object><name>cell</name><bndbox><xmin>1</xmin></bndbox></object>", r"a\.xml, object 1: no complete <bndbox>"),
])
def test_every_voc_object_is_checked(tmp_path, body, needle):
    root = _voc(tmp_path / "v", {"a": body})
    with pytest.raises(DataError, match=needle):
        VocSource(root).read()


def test_a_voc_image_in_two_split_files_is_refused(tmp_path, capsys):
    root = _voc(tmp_path / "v", {f"i{k}": _object("cell") for k in range(12)},
                {"train": [f"i{k}" for k in range(10)], "test": ["i9", "i10", "i11"]})
    _assert_refused(["--data", root], tmp_path / "r", capsys, "test.txt: i9 is also in train.txt")


@pytest.mark.parametrize(("rows", "needle"), [
    (b"a.jpg,1,1,5,5,c\xe9ll", r"boxes\.csv: not UTF-8 text"),
    (b"a.jpg,1,1,5,5,cell,tset", r"boxes\.csv, line 2: unknown split 'tset' \(did you mean 'test'"),
    (b"a.jpg,1,1,5,5,cell,train\na.jpg,6,6,9,9,cell,test", r"boxes\.csv, line 3: a\.jpg has split 'test'.* line 2"),
    (b"a.jpg,1,1,5,5,,train", r"boxes\.csv, line 2: the box has no class label"),
    (b"a.jpg,1,1,five,5,cell,train", r"boxes\.csv, line 2: box \['1', '1', 'five', '5'\] is not four numbers"),
], ids=["not-utf8", "unknown-split", "two-splits", "no-label", "corner-text"])
def test_every_box_csv_row_is_checked(tmp_path, rows, needle):
    _jpeg(tmp_path / "a.jpg")
    (tmp_path / "boxes.csv").write_bytes(b"image,x1,y1,x2,y2,label,split\n" + rows + b"\n")
    with pytest.raises(DataError, match=needle):
        BoxCsvSource(tmp_path / "boxes.csv").read()


def test_a_box_csv_with_a_byte_order_mark_reads(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    (tmp_path / "boxes.csv").write_text("\ufeffimage,x1,y1,x2,y2,label\na.jpg,1,1,5,5,cell\n", encoding="utf-8")
    assert BoxCsvSource.can_open(str(tmp_path / "boxes.csv"))
    assert BoxCsvSource(tmp_path / "boxes.csv").read().class_names == ["cell"]


def test_a_voc_file_that_is_not_an_annotation(tmp_path):
    root = _voc(tmp_path / "v", {"a": _object("cell")})
    (root / "Annotations" / "a.xml").write_text("<svg><object/></svg>")
    with pytest.raises(DataError, match=r"a\.xml: the root element is <svg>, not <annotation>"):
        VocSource(root).read()


# -- 12: misleading words and silence ---------------------------------------------------------------------------------
def test_a_classifier_on_detection_data_is_told_what_the_data_are(shape_folder, tmp_path, capsys):
    voc = _voc(tmp_path / "v", {f"i{k}": _object("cell") for k in range(3)})
    _jpeg(tmp_path / "a.jpg")
    (tmp_path / "boxes.csv").write_text("image,x1,y1,x2,y2,label\na.jpg,1,1,5,5,cell\n")
    run = tmp_path / "classifier"
    code, _, err = run_cli(["train", "--data", shape_folder, "--out", run, "--strategy", "linear", "--input-size", "32",
                            "--epochs", "1", "--batch-size", "32", "--quiet"], capsys)
    assert code == 0, err
    for data, what in ((voc, "a detection data set (Pascal VOC"),
                       (tmp_path / "boxes.csv", "a detection data set (a box CSV")):
        code, out, err = run_cli(["evaluate", run, "--data", data], capsys)
        text = " ".join(err.split())
        assert code == 2 and "Traceback" not in err and out == "", err
        assert what in text and "--task detection" in text
        assert "class folder holds no images" not in text and "no 'path' column" not in text
    code, _, err = run_cli(["train", "--task", "classification", "--data", voc, "--out", tmp_path / "r2",
                            "--input-size", "32", "--epochs", "1", "--quiet"], capsys)
    assert code == 2 and "a detection data set (Pascal VOC" in " ".join(err.split())
    assert not (tmp_path / "r2").exists()


def test_voc_images_without_an_xml_file_are_left_out_with_a_notice(tmp_path):
    root = _voc(tmp_path / "v", {"a": _object("cell"), "b": ""})
    _jpeg(root / "JPEGImages" / "c.jpg")  # no XML: perhaps never annotated
    _jpeg(root / "JPEGImages" / "d.png")
    data = VocSource(root).read()
    assert [Path(s.ref).name for s in data.samples] == ["a.jpg", "b.jpg"]  # b: an XML without <object>, kept
    assert len(data.samples[1].boxes) == 0
    assert any(n.startswith("2 image(s) in ") and "left out (e.g. c.jpg)" in n for n in data.notices), data.notices


def test_the_left_out_voc_images_are_counted_on_the_dataset_card(tmp_path):
    stems = [f"i{k}" for k in range(12)]
    root = _voc(tmp_path / "v", {s: _object("cell", (2 + k, 3, 20 + k, 30)) for k, s in enumerate(stems)})
    _jpeg(root / "JPEGImages" / "unannotated.jpg")
    card = prepare_data(RunConfig(data=str(root), task="detection")).card()  # what a run writes in metrics.json
    assert sum(card["counts"][k] for k in ("train", "val", "test")) == 12
    assert any("1 image(s) in" in n and "unannotated.jpg" in n for n in card["notices"]), card


def test_a_coco_file_nested_thousands_deep_is_refused(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _assert_refused(["--data", path], tmp_path / "r", capsys, "c.json: not a readable JSON file")


def test_a_folder_named_like_an_annotation_is_skipped_with_a_notice(tmp_path):
    root = _voc(tmp_path / "v", {"a": _object("cell")})
    (root / "Annotations" / "b.xml").mkdir()
    data = VocSource(root).read()
    assert len(data.samples) == 1
    assert any("1 entries of" in n and "not regular files and were skipped (e.g. b.xml)" in n for n in data.notices)
