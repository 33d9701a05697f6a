"""More bad input of the families already covered: named pipes where masks and box images are read, duplicate
images whose names hold brackets, annotations that point outside the data folder, detection classes without
validation or test boxes, task options a network cannot be built with, parent folders of a failed run, and class
names that hold commas. Each refusal is exit code 2 and one message naming the culprit, with nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from generated import run_cli, run_cli_subprocess, shape_image, user_error
from PIL import Image

from medtransfer.model.card import model_card
from medtransfer.errors import ConfigError
from medtransfer.files import atomic_files, atomic_folder
from medtransfer.tasks.option_failures import network_from_options

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "4", "--quiet"]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")






def noise(path: Path, w: int = 48, h: int = 40, rgb: bool = True) -> Path:
    """Noise seeded by the file's name: no two images alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(list(path.name.encode()))
    Image.fromarray(rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)).save(path)
    return path


def mask_folder(root: Path, n: int = 8) -> Path:
    """``root/images/s<i>.png`` and ``root/masks/s<i>.png`` (a 0/255 square) plus ``root/pairs.csv`` listing them."""
    (root / "masks").mkdir(parents=True)
    for i in range(n):
        noise(root / "images" / f"s{i}.png", 32, 32, rgb=False)
        m = np.zeros((32, 32), np.uint8)
        m[8:8 + i + 4, 8:20] = 255
        Image.fromarray(m).save(root / "masks" / f"s{i}.png")
    (root / "pairs.csv").write_text("image,mask\n" + "".join(f"images/s{i}.png,masks/s{i}.png\n" for i in range(n)))
    return root


def pipe(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def voc_annotation(filename: str) -> str:
    """A VOC annotation of one ``cell`` box in ``filename``."""
    return (f"<annotation><filename>{filename}</filename><object><name>cell</name><bndbox><xmin>2</xmin><ymin>3"
            f"</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>")


# -- 1. named pipes where masks and box images are read ---------------------------------------------------------------
@needs_fifo
@pytest.mark.parametrize("data", ["folder", "csv"])
def test_a_named_pipe_as_a_mask_is_refused_by_name(data, tmp_path):
    root = mask_folder(tmp_path / "d")
    pipe(root / "masks" / "s3.png")
    spec = root if data == "folder" else root / "pairs.csv"
    out = tmp_path / "out"
    text = user_error(run_cli_subprocess(["train", "--data", spec, "--out", out, *QUICK]), "s3.png", "not a regular file")
    assert ("line 5" in text) == (data == "csv")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@needs_fifo
def test_a_named_pipe_as_a_segmentation_image_is_refused_by_name(tmp_path):
    root = mask_folder(tmp_path / "d")
    pipe(root / "images" / "s2.png")
    user_error(run_cli_subprocess(["train", "--data", root / "pairs.csv", "--out", tmp_path / "out", *QUICK]),
            "line 4", "s2.png", "not a regular file")
    assert not (tmp_path / "out").exists()


@needs_fifo
@pytest.mark.parametrize("layout", ["box-csv", "voc", "coco"])
def test_a_named_pipe_as_a_box_image_is_refused_by_name(layout, tmp_path):
    root = tmp_path / "d"
    for i in range(4):
        noise(root / "JPEGImages" / f"i{i}.jpg")
    if layout == "box-csv":
        (root / "b.csv").write_text("image,x1,y1,x2,y2,label\n" + "".join(
            f"JPEGImages/i{i}.jpg,2,3,20,30,cell\n" for i in range(4)))
        spec, needles = root / "b.csv", ["b.csv, line 3"]
    elif layout == "voc":
        (root / "Annotations").mkdir()
        for i in range(4):
            (root / "Annotations" / f"i{i}.xml").write_text(voc_annotation(f"i{i}.jpg"))
        spec, needles = root, ["i1.xml"]
    else:
        (root / "c.json").write_text(json.dumps({
            "images": [{"id": i, "file_name": f"JPEGImages/i{i}.jpg"} for i in range(4)],
            "categories": [{"id": 1, "name": "cell"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 10, 5]} for i in range(4)]}))
        spec, needles = root / "c.json", ["c.json, image 1"]
    pipe(root / "JPEGImages" / "i1.jpg")
    user_error(run_cli_subprocess(["train", "--data", spec, "--task", "detection", "--out", tmp_path / "out", *QUICK]),
            *needles, "i1.jpg", "not a regular file")
    assert not (tmp_path / "out").exists()


# -- 2. duplicate images whose names hold brackets ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a[1].png", "[x]b.png", "c[.png"])
def test_a_duplicate_image_named_with_brackets_is_found(name, tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for kind in ("disk", "square"):
        (data / kind).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(shape_image(kind, rng, 32)).save(data / kind / f"{kind}_{i}.png")
    shutil.copyfile(data / "disk" / "disk_3.png", data / "disk" / name)
    out = tmp_path / "out"
    user_error(run_cli(["train", "--data", data, "--strategy", "linear", "--out", out, *QUICK], capsys),
            "identical images", name, "disk_3.png")
    assert not out.exists()


# -- 3. annotations that point outside the data folder ------------------------------------------------------------
@pytest.mark.parametrize("where", ["climbs", "absolute"])
@pytest.mark.parametrize("layout", ["voc", "coco"])
def test_an_annotation_naming_an_image_outside_the_data_folder_is_user_error(layout, where, tmp_path, capsys):
    root = tmp_path / "a" / "b" / "d"
    outside = noise(tmp_path / "a" / "outside.jpg")  # a readable image: only the rule refuses it
    up = {"voc": "../../../", "coco": "../../"}[layout]  # from JPEGImages/, or from the JSON file's folder
    name = str(outside) if where == "absolute" else f"{up}outside.jpg"
    for i in range(12):
        noise(root / "JPEGImages" / f"i{i}.jpg")
    if layout == "voc":
        (root / "Annotations").mkdir()
        for i in range(12):
            (root / "Annotations" / f"i{i}.xml").write_text(voc_annotation(name if i == 2 else f"i{i}.jpg"))
        spec, needles = root, ["i2.xml, <filename>"]
    else:
        names = {i: f"JPEGImages/i{i}.jpg" for i in range(12)} | {2: name}
        (root / "c.json").write_text(json.dumps({
            "images": [{"id": i, "file_name": names[i]} for i in range(12)],
            "categories": [{"id": 1, "name": "cell"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 10, 5]} for i in range(12)]}))
        spec, needles = root / "c.json", ["c.json, image 2, 'file_name'"]
    out = tmp_path / "out"
    user_error(run_cli(["train", "--data", spec, "--task", "detection", "--out", out, *QUICK], capsys),
            *needles, "outside.jpg", "points outside")
    assert not out.exists()


def test_an_image_in_a_subfolder_of_the_data_folder_is_still_read(tmp_path):
    from medtransfer.data.sources.boxes import CocoSource

    noise(tmp_path / "imgs" / "x.jpg")
    (tmp_path / "c.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "imgs/./sub/../x.jpg"}], "categories": [{"id": 1, "name": "cell"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5]}]}))
    (tmp_path / "imgs" / "sub").mkdir()
    ref = CocoSource(tmp_path / "c.json").read().samples[0].ref
    assert Path(ref).resolve() == (tmp_path / "imgs" / "x.jpg").resolve()


# -- 4. a detection class without validation or test boxes -----------------------------------------------------------
@pytest.mark.parametrize("part, shown", [("val", "validation"), ("test", "test")])
def test_a_detection_class_without_boxes_in_a_scored_split_is_user_error(part, shown, tmp_path, capsys):
    rows = ["image,x1,y1,x2,y2,label,split"]
    for i, split in enumerate(["train"] * 6 + ["val"] * 3 + ["test"] * 3):
        noise(tmp_path / f"i{i}.jpg")
        rows.append(f"i{i}.jpg,2,3,20,30,cell,{split}")
        if split != part:  # 'tumour' has boxes in every split but this one
            rows.append(f"i{i}.jpg,22,5,40,30,tumour,{split}")
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    user_error(run_cli(["train", "--data", tmp_path / "b.csv", "--out", out, *QUICK, "--task-option", "fpn_channels=8"],
                    capsys), f"the given {shown} split holds no boxes of class 'tumour'", "AP50")
    assert not out.exists()


# -- 5. task options a network cannot be built with -----------------------------------------------------------------
def test_fcos_with_too_few_pyramid_channels_is_refused_up_front(tmp_path, capsys):
    rows = ["image,x1,y1,x2,y2,label"] + [f"{noise(tmp_path / f'i{i}.jpg').name},2,3,20,30,cell" for i in range(12)]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    user_error(run_cli(["train", "--data", tmp_path / "b.csv", "--out", out, *QUICK, "--task-option", "detector=fcos",
                     "--task-option", "fpn_channels=8"], capsys), "fpn_channels", "multiple of 32", "Got 8")
    assert not out.exists()


def test_a_network_that_cannot_be_built_from_given_options_names_them():
    with pytest.raises(ConfigError, match=r"task option\(s\) fpn_channels=8 \(.*divisible.*\)"):
        with network_from_options({"fpn_channels": 8}, "detection"):
            torch.nn.GroupNorm(32, 8)  # what torchvision's FCOS head builds
    with pytest.raises(ValueError, match="divisible"):  # without user options it is a programming error
        with network_from_options({}, "detection"):
            torch.nn.GroupNorm(32, 8)
    with pytest.raises(KeyError):  # never a ConfigError for a bug of another kind
        with network_from_options({"fpn_channels": 8}, "detection"):
            {}["missing"]


# -- 6. parent folders of a failed run --------------------------------------------------------------------------------
def test_a_failed_write_removes_the_parent_folders_it_made_and_only_those(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out" / "a" / "b" / "run") as tmp:
            (tmp / "x").write_text("half")
            raise RuntimeError("the run failed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and not any((tmp_path / "out").iterdir())
    with atomic_folder(tmp_path / "out" / "c" / "run") as tmp:
        (tmp / "x").write_text("whole")
    assert (tmp_path / "out" / "c" / "run" / "x").read_text() == "whole"


def test_a_failed_set_of_files_removes_the_parent_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_files([tmp_path / "a" / "b" / "m.onnx", tmp_path / "a" / "b" / "m.onnx.json"]) as (model, spec):
            model.write_text("half")
            raise RuntimeError("the check failed")
    assert not any(tmp_path.iterdir())
    with atomic_files([tmp_path / "a" / "m.onnx"]) as (model,):
        model.write_text("whole")
    assert (tmp_path / "a" / "m.onnx").read_text() == "whole"


def test_a_failed_train_leaves_no_parent_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for kind in ("disk", "square"):
        (data / kind).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(shape_image(kind, rng, 32)).save(data / kind / f"{kind}_{i}.png")
    code, _, err = run_cli(["train", "--data", data, "--strategy", "full", "--lr", "1e30", "--out",
                            tmp_path / "out" / "a" / "b", *QUICK], capsys)
    assert code == 2 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# -- 7. class names that hold commas ----------------------------------------------------------------------------------
def test_the_model_card_lists_class_names_that_hold_commas_unambiguously():
    card = model_card({"class_names": ["malignant", "normal, benign", 'say "hi"'], "input_size": 32}, {}, {}, {},
                      choice="the best")
    assert 'classes: "malignant", "normal, benign", "say \\\\"hi\\\\"".' in card  # Markdown escapes the backslash
