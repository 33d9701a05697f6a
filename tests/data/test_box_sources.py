"""Images with boxes: Pascal VOC, COCO JSON, box CSV and boxes from masks, each with its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtransfer.data.sources import open_source
from medtransfer.data.sources.boxes import BOX_SOURCES, BoxCsvSource, CocoSource, VocSource, boxes_from_masks
from medtransfer.data.sources.mask_sources import MaskFolderSource
from medtransfer.errors import DataError

BCCD = Path(__file__).parents[2].parent / "shared" / "data" / "bccd"


def jpeg(path: Path, w: int = 64, h: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)
    return path


def voc(root: Path, objects: dict[str, list[tuple[str, int, int, int, int]]], splits: dict | None = None) -> Path:
    for stem, objs in objects.items():
        jpeg(root / "JPEGImages" / f"{stem}.jpg")
        body = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                       f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objs)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>64</width><height>48</height></size>{body}"
            f"</annotation>")
    for name, stems in (splits or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(stems) + "\n")
    return root


def test_voc_boxes_classes_and_split(tmp_path):
    root = voc(tmp_path / "v", {"a": [("cell", 1, 1, 10, 20), ("blob", 30, 5, 70, 30)], "b": [], "c": [("cell", 5, 5, 9, 9)]},
               {"train": ["a", "b"], "test": ["c"]})
    assert isinstance(open_source(root, sources=BOX_SOURCES), VocSource)
    data = VocSource(root).read()
    assert data.class_names == ["blob", "cell"] and [s.split for s in data.samples] == ["train", "train", "test"]
    a = data.samples[0].target
    np.testing.assert_array_equal(a["boxes"], [[0, 0, 10, 20], [29, 4, 64, 30]])  # 1-based corners; clipped at 64
    assert a["labels"].tolist() == [1, 0] and len(data.samples[1].boxes) == 0  # an image without boxes is kept
    assert data.notices == ["1 box(es) crossed the image border and were clipped to it."]


@pytest.mark.parametrize(("objects", "needle"), [
    ([("cell", 10, 5, 9, 9)], r"a\.xml, object 1: box \(9, 4, 9, 9\) has x2 <= x1"),  # VOC corners are inclusive
    ([("cell", 70, 5, 90, 9)], r"a\.xml, object 1: box .* lies wholly outside the 64×48 image"),
    ([("virus", 1, 1, 5, 5)], r"a\.xml, object 1: unknown class 'virus'; the classes are cell"),
])
def test_voc_box_errors(tmp_path, objects, needle):
    root = voc(tmp_path / "v", {"a": objects})
    with pytest.raises(DataError, match=needle):
        VocSource(root, class_names=["cell"]).read()


def test_voc_missing_image(tmp_path):
    root = voc(tmp_path / "v", {"a": [("cell", 1, 1, 5, 5)]})
    (root / "JPEGImages" / "a.jpg").unlink()
    with pytest.raises(DataError, match=r"a\.xml: the image .*a\.jpg is missing"):
        VocSource(root).read()


def coco(tmp_path: Path, annotations: list[dict]) -> Path:
    jpeg(tmp_path / "img" / "x.jpg")
    jpeg(tmp_path / "img" / "y.jpg")
    doc = {"images": [{"id": 1, "file_name": "img/x.jpg"}, {"id": 2, "file_name": "img/y.jpg"}],
           "categories": [{"id": 7, "name": "polyp"}], "annotations": annotations}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    return tmp_path / "c.json"


def test_coco_boxes_crowd_and_empty_images(tmp_path):
    path = coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
                           {"id": 2, "image_id": 1, "category_id": 7, "bbox": [0, 0, 64, 48], "iscrowd": 1}])
    assert isinstance(open_source(path, sources=BOX_SOURCES), CocoSource)
    data = CocoSource(path).read()
    assert data.class_names == ["polyp"]
    np.testing.assert_array_equal(data.samples[0].target["boxes"], [[2, 3, 12, 8]])
    assert len(data.samples[1].boxes) == 0 and "1 iscrowd annotation(s) were left out" in data.notices[0]


@pytest.mark.parametrize(("annotation", "needle"), [
    ({"id": 5, "image_id": 9, "category_id": 7, "bbox": [1, 1, 2, 2]}, "annotation 5: image_id 9 is not among the images"),
    ({"id": 5, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]}, "annotation 5: category_id 3 is not among"),
    ({"id": 5, "image_id": 1, "category_id": 7, "bbox": [1, 1, 0, 2]}, r"annotation 5: box \(1, 1, 1, 3\) has x2 <= x1"),
])
def test_coco_errors(tmp_path, annotation, needle):
    with pytest.raises(DataError, match=needle):
        CocoSource(coco(tmp_path, [annotation])).read()


def test_box_csv_rows_per_box_and_images_without_boxes(tmp_path):
    for name in ("p.jpg", "q.jpg", "r.jpg"):
        jpeg(tmp_path / name)
    (tmp_path / "b.csv").write_text("image,x1,y1,x2,y2,label,split\np.jpg,1,2,11,12,wbc,train\np.jpg,20,20,30,40,rbc,"
                                    "train\nq.jpg,,,,,,test\nr.jpg,0,0,5,5,rbc,train\n")
    assert isinstance(open_source(tmp_path / "b.csv", sources=BOX_SOURCES), BoxCsvSource)
    data = BoxCsvSource(tmp_path / "b.csv").read()
    assert [Path(s.ref).name for s in data.samples] == ["p.jpg", "q.jpg", "r.jpg"] and data.class_names == ["rbc", "wbc"]
    assert data.samples[0].labels == (1, 0) and data.samples[1].boxes == () and data.samples[1].split == "test"
    (tmp_path / "b.csv").write_text("image,x1,y1,x2,y2,label\np.jpg,1,2,11,12,wbc\nmissing.jpg,1,1,3,3,wbc\n")
    with pytest.raises(DataError, match=r"b\.csv, line 3: the image .*missing\.jpg is missing"):
        BoxCsvSource(tmp_path / "b.csv").read()
    (tmp_path / "b.csv").write_text("image,x1,y1,x2,y2,label\np.jpg,1,2,one,12,wbc\n")
    with pytest.raises(DataError, match=r"b\.csv, line 2: box .* is not four numbers"):
        BoxCsvSource(tmp_path / "b.csv").read()


def test_boxes_from_masks_one_per_component(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:9] = 255  # one component
    mask[10:18, 20:22] = 255  # another
    Image.fromarray(np.full((20, 30), 50, np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    data = boxes_from_masks(MaskFolderSource(tmp_path).read())
    assert data.class_names == ["foreground"]
    assert sorted(data.samples[0].boxes) == [(3.0, 2.0, 9.0, 5.0), (20.0, 10.0, 22.0, 18.0)]


@pytest.mark.skipif(not BCCD.is_dir(), reason="../shared/data/bccd is not here")
def test_bccd_reads_with_its_split_and_counts():
    data = VocSource(BCCD).read()
    counts = {c: sum(s.labels.count(i) for s in data.samples) for i, c in enumerate(data.class_names)}
    assert counts == {"Platelets": 361, "RBC": 4155, "WBC": 372}
    assert [sum(s.split == k for s in data.samples) for k in ("train", "val", "test")] == [205, 87, 72]
