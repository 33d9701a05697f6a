"""Sources of images with boxes (object detection): Pascal VOC folders, COCO JSON, CSV lists, and boxes derived from
masks.

Boxes are ``(x1, y1, x2, y2)`` in pixels of the image as stored, continuous coordinates (a box around pixel columns
0..9 is ``x1 = 0, x2 = 10``; VOC's 1-based inclusive corners become ``xmin - 1, ymin - 1, xmax, ymax``). Rules, the
same for every source:

* ``x2 <= x1`` or ``y2 <= y1``, a box wholly outside its image, a class that is not one of ``class_names`` (when
  given), or an annotation that names a missing image: one :class:`~medtransfer.errors.DataError` naming the file
  (and line or box) and what to do.
* A box that only crosses the border is clipped to the image; how many were, is a notice on the data set.
* Images without boxes are kept: they are where false positives are measured. In Pascal VOC such an image has an XML
  file without ``<object>``; an image in ``JPEGImages/`` without any XML file is left out, with a notice, since it may
  be one that nobody annotated (counting its objects as false positives would be wrong).
* The structure of COCO and VOC files is checked whole before use (:mod:`~medtransfer.data.sources.annotations`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from medtransfer.data.audit import check_spellings
from medtransfer.data.sources.annotations import BOX_COLUMNS, image_inside, is_voc_layout, read_coco, read_voc
from medtransfer.data.sources.base import ImageSet, Source, register_source
from medtransfer.data.sources.folder import SPLIT_ALIASES, canonical_split
from medtransfer.data.sources.image_files import is_image_file, read_image_file
from medtransfer.data.sources.mask_pairs import MaskedImages, image_size
from medtransfer.data.sources.mask_sources import MaskCsvSource, MaskFolderSource
from medtransfer.data.sources.nifti_slices import NiftiVolumeSource
from medtransfer.data.sources.special_files import is_special_file
from medtransfer.errors import DataError, did_you_mean

#: the image + mask sources, in the segmentation task's order
MASK_SOURCES = (MaskCsvSource, NiftiVolumeSource, MaskFolderSource)


@dataclass(frozen=True)
class BoxedSample:
    """One image and its boxes (``N×4`` float, pixels of the stored image) with their class indices."""

    ref: str
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    labels: tuple[int, ...] = ()
    split: str | None = None
    patient_id: str | None = None
    size: tuple[int, int] | None = None  # (width, height) of the stored image

    @property
    def target(self) -> dict[str, np.ndarray]:
        return {"boxes": np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4),
                "labels": np.asarray(self.labels, dtype=np.int64)}


@dataclass(kw_only=True)
class BoxedImages(ImageSet):
    """Images with their boxes; ``class_names`` name the box classes (no background class)."""

    samples: list[BoxedSample]
    #: what :meth:`class_counts` counts, in the split audit's messages
    counted = "boxes"

    def class_counts(self, indices) -> np.ndarray:
        """The boxes of each class among ``samples[indices]``."""
        labels = [label for i in indices for label in self.samples[int(i)].labels]
        return np.bincount(np.asarray(labels, dtype=np.int64), minlength=self.num_classes)


class BoxCollector:
    """Checks, clips and collects the boxes of one data set; counts the clipped ones for the notice."""

    def __init__(self, class_names: list[str] | None):
        self.fixed = class_names is not None
        self.class_names = list(class_names or [])
        self.clipped = 0
        self.first_seen: dict[str, str] = {}  # a class found in the data -> where, for the spelling audit

    def label(self, name: str, where: str) -> str:
        name = str(name).strip()
        if not name:
            raise DataError(f"{where}: the box has no class label; give each box its class.")
        if name not in self.class_names:
            if self.fixed:
                raise DataError(f"{where}: unknown class {name!r}; the classes are {', '.join(self.class_names)}. "
                                f"Fix the label, or add the class to class_names.")
            self.class_names.append(name)
            self.first_seen[name] = where
        return name

    def box(self, corners, size: tuple[int, int], where: str) -> tuple[float, float, float, float]:
        """``corners`` (x1, y1, x2, y2) checked against the image ``size`` (width, height), clipped if it crosses."""
        try:
            x1, y1, x2, y2 = (float(v) for v in corners)
        except (TypeError, ValueError):
            raise DataError(f"{where}: box {corners!r} is not four numbers x1, y1, x2, y2.") from None
        if not all(np.isfinite([x1, y1, x2, y2])):
            raise DataError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) holds a non-finite number.")
        if x2 <= x1 or y2 <= y1:
            raise DataError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has x2 <= x1 or y2 <= y1; corners are "
                            f"x1, y1 (top left) then x2, y2 (bottom right).")
        w, h = size
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise DataError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies wholly outside the {w}×{h} image.")
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
        self.clipped += clipped != (x1, y1, x2, y2)
        return clipped

    def finish(self, samples: list[BoxedSample], name: str, description: str) -> BoxedImages:
        # 'Cell' and 'cell' would be two classes: the same audit as for image labels
        check_spellings(name, [(c, w) for c, w in self.first_seen.items()])
        order = sorted(self.class_names) if not self.fixed else self.class_names
        index = {c: i for i, c in enumerate(order)}
        out = [BoxedSample(s.ref, s.load, s.boxes, tuple(index[self.class_names[i]] for i in s.labels), s.split,
                           s.patient_id, s.size) for s in samples]
        data = BoxedImages(samples=out, class_names=order, name=name, description=description)
        if self.clipped:
            data.notices.append(f"{self.clipped} box(es) crossed the image border and were clipped to it.")
        return data


def _image(path: Path, where: str) -> tuple[int, int]:
    """(width, height) of the image at ``path``, read from its header."""
    if not path.is_file() and not is_special_file(path):
        raise DataError(f"{where}: the image {path} is missing. Add it, or remove its annotation.")
    try:
        h, w = image_size(path)  # refuses a named pipe, which would block the read
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    return w, h


@register_source
class VocSource(Source):
    """``root/Annotations/*.xml`` + ``root/JPEGImages/``; ``ImageSets/Main/{train,val,test}.txt`` give the split."""

    kind = "voc"

    def __init__(self, root: str | os.PathLike, *, class_names: list[str] | None = None, window=None):
        self.root, self.class_names, self.window = Path(root).expanduser(), class_names, window

    @classmethod
    def can_open(cls, spec: str) -> bool:
        return is_voc_layout(spec)

    def read(self) -> BoxedImages:
        collector, samples = BoxCollector(self.class_names), []
        split_of = self._splits()
        found = sorted((self.root / "Annotations").glob("*.xml"))
        xmls = [p for p in found if p.is_file()]  # a folder or a named pipe named *.xml is no annotation
        if not xmls:
            raise DataError(f"{self.root / 'Annotations'}: no .xml annotations in it.")
        for xml in xmls:
            filename, objects = read_voc(xml)
            image = image_inside(self.root / "JPEGImages", filename or f"{xml.stem}.jpg", f"{xml}, <filename>")
            size = _image(image, str(xml))
            boxes, labels = [], []
            for obj in objects:
                x1, y1, x2, y2 = obj.corners
                boxes.append(collector.box((x1 - 1, y1 - 1, x2, y2), size, obj.where))
                labels.append(collector.class_names.index(collector.label(obj.name, obj.where)))
            samples.append(BoxedSample(str(image), partial(read_image_file, image, window=self.window),
                                       tuple(boxes), tuple(labels), split_of.get(xml.stem) if split_of else None,
                                       size=size))
        if split_of and any(s.split is None for s in samples):
            missing = next(s.ref for s in samples if s.split is None)
            raise DataError(f"{self.root / 'ImageSets' / 'Main'}: {Path(missing).name} is in no split file; list every "
                            f"image in train.txt, val.txt or test.txt, or remove the split files.")
        data = collector.finish(samples, self.root.name, f"{len(samples)} images (Pascal VOC)")
        if len(found) > len(xmls):
            data.notices.append(f"{len(found) - len(xmls)} entries of {self.root / 'Annotations'} named *.xml are "
                                f"not regular files and were skipped (e.g. {sorted(set(found) - set(xmls))[0].name}).")
        unannotated = self._unannotated({Path(s.ref) for s in samples})
        if unannotated:
            data.notices.append(
                f"{len(unannotated)} image(s) in {self.root / 'JPEGImages'} have no XML file in Annotations/ and were "
                f"left out (e.g. {unannotated[0].name}): it may be that nobody annotated them. To keep an image with "
                f"no objects, give it an XML file without <object>.")
        return data

    def _unannotated(self, annotated: set[Path]) -> list[Path]:
        """The images in ``JPEGImages/`` that no XML file names."""
        return sorted(p for p in (self.root / "JPEGImages").iterdir()
                      if not p.name.startswith(".") and p not in annotated and p.is_file() and is_image_file(p))

    def _splits(self) -> dict[str, str]:
        folder = self.root / "ImageSets" / "Main"
        out: dict[str, str] = {}
        for name in ("train", "val", "test"):
            f = folder / f"{name}.txt"
            if not f.is_file():
                continue
            try:
                stems = f.read_text(encoding="utf-8").split()
            except (OSError, UnicodeDecodeError) as e:
                raise DataError(f"{f}: cannot be read as a list of image names ({e}).") from None
            for stem in stems:
                if out.get(stem, name) != name:  # the later file would win without a word
                    raise DataError(f"{f}: {stem} is also in {out[stem]}.txt; an image belongs to one split.")
                out[stem] = name
        return out


@register_source
class CocoSource(Source):
    """A COCO JSON file (``images``, ``annotations``, ``categories``); image paths are relative to the JSON's folder,
    or to ``image_root``. ``iscrowd`` boxes, and categories that no box uses, are left out, with a notice."""

    kind = "coco"

    def __init__(self, path: str | os.PathLike, *, image_root: str | None = None, window=None):
        self.path = Path(path).expanduser()
        self.image_root = Path(image_root).expanduser() if image_root else self.path.parent
        self.window = window

    @classmethod
    def can_open(cls, spec: str) -> bool:
        """Any JSON file: no other source reads JSON, and reading it says what it lacks (not valid JSON, no
        ``images`` list, …) more precisely than "cannot tell how to read this"."""
        p = Path(spec).expanduser()
        return p.suffix.lower() == ".json" and p.is_file()

    def read(self) -> BoxedImages:
        coco = read_coco(self.path)
        # exports often list categories no box uses (Roboflow: the data set's own name): no class without boxes
        used = {category_id for _, _, category_id, _, crowd in coco.annotations if not crowd}
        unused = [f"{i} {name!r}" for i, name in coco.categories.items() if i not in used]
        collector = BoxCollector([name for i, name in coco.categories.items() if i in used])
        boxes: dict = {image_id: [] for image_id in coco.images}
        crowd = 0
        for where, image_id, category_id, (x, y, w, h), iscrowd in coco.annotations:
            if iscrowd:
                crowd += 1
                continue
            boxes[image_id].append((where, (x, y, x + w, y + h), coco.categories[category_id]))
        samples = []
        for image_id, file_name in coco.images.items():
            path = image_inside(self.image_root, file_name, f"{self.path}, image {image_id}, 'file_name'")
            size = _image(path, f"{self.path}, image {image_id}")
            kept = [collector.box(corners, size, where) for where, corners, _ in boxes[image_id]]
            labels = [collector.class_names.index(name) for _, _, name in boxes[image_id]]
            samples.append(BoxedSample(str(path), partial(read_image_file, path, window=self.window), tuple(kept),
                                       tuple(labels), size=size))
        data = collector.finish(samples, self.path.stem, f"{len(samples)} images (COCO)")
        if crowd:
            data.notices.append(f"{crowd} iscrowd annotation(s) were left out: a crowd region is not one object.")
        if unused:
            data.notices.append(f"{len(unused)} categor{'y' if len(unused) == 1 else 'ies'} without boxes left out of "
                                f"the classes: {', '.join(unused[:5])}{', …' if len(unused) > 5 else ''}.")
        return data




@register_source
class BoxCsvSource(Source):
    """A CSV with one row per box, ``image,x1,y1,x2,y2,label[,split,patient_id]``; an image without boxes is listed
    once with the box columns empty. Paths are relative to the CSV's folder."""

    kind = "box-csv"

    def __init__(self, path: str | os.PathLike, *, class_names: list[str] | None = None, window=None):
        self.path, self.class_names, self.window = Path(path).expanduser(), class_names, window

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec).expanduser()
        if p.suffix.lower() != ".csv" or not p.is_file():
            return False
        try:
            with open(p, newline="", encoding="utf-8-sig", errors="replace") as f:
                header = next(csv.reader(f), [])
        except (OSError, csv.Error):  # not this source's to read; the others, or the final error, say why
            return False
        return set(BOX_COLUMNS) <= {h.strip() for h in header}

    def read(self) -> BoxedImages:
        collector, rows = BoxCollector(self.class_names), {}
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                try:
                    for row in reader:
                        self._add_row(row, f"{self.path}, line {reader.line_num}", reader.line_num, rows, collector)
                except csv.Error as e:
                    raise DataError(f"{self.path}, line {reader.line_num}: malformed CSV ({e}).") from None
        except UnicodeDecodeError:
            raise DataError(f"{self.path}: not UTF-8 text. Save the CSV as UTF-8.") from None
        except OSError as e:
            raise DataError(f"{self.path}: cannot read the file ({e.strerror or e}).") from None
        if not rows:
            raise DataError(f"{self.path}: the CSV has a header but no rows. Add one row per box.")
        samples = []
        for entry in rows.values():
            if "size" not in entry:
                entry["size"] = _image(entry["path"], f"{self.path}, line {entry['line']}")
            samples.append(BoxedSample(str(entry["path"]), partial(read_image_file, entry["path"], window=self.window),
                                       tuple(entry["boxes"]), tuple(entry["labels"]), entry["split"], entry["patient"],
                                       entry["size"]))
        return collector.finish(samples, self.path.stem, f"{len(samples)} images (box CSV)")

    def _add_row(self, row: dict, where: str, line: int, rows: dict, collector: BoxCollector) -> None:
        """One CSV row into ``rows`` (image path -> its boxes, split and patient); every row of an image must give it
        the same split and patient."""
        cell = (row.get("image") or "").strip()
        if not cell:
            raise DataError(f"{where}: empty 'image' cell.")
        path = Path(cell) if Path(cell).is_absolute() else self.path.parent / cell
        raw = (row.get("split") or "").strip()
        split = canonical_split(raw) if raw else None
        if raw and split is None:
            raise DataError(f"{where}: unknown split {raw!r}{did_you_mean(raw.lower(), SPLIT_ALIASES)}; give train, "
                            f"val or test, or leave the cell empty.")
        patient = (row.get("patient_id") or "").strip() or None
        entry = rows.setdefault(str(path), {"path": path, "boxes": [], "labels": [], "line": line, "split": split,
                                            "patient": patient})
        if (entry["split"], entry["patient"]) != (split, patient):
            raise DataError(f"{where}: {cell} has split {split!r} and patient {patient!r} here but {entry['split']!r} "
                            f"and {entry['patient']!r} on line {entry['line']}; give every row of an image the same.")
        corners = [(row.get(c) or "").strip() for c in ("x1", "y1", "x2", "y2")]
        if not any(corners) and not (row.get("label") or "").strip():
            return  # an image without boxes
        if "size" not in entry:
            entry["size"] = _image(path, where)
        entry["boxes"].append(collector.box(corners, entry["size"], where))
        entry["labels"].append(collector.class_names.index(collector.label(row.get("label") or "", where)))


#: the sources of images with boxes, most specific first
BOX_SOURCES = (VocSource, CocoSource, BoxCsvSource)


def boxes_from_masks(data: MaskedImages) -> BoxedImages:
    """Each connected component of each foreground class of a mask becomes one box of that class (8-connected)."""
    from scipy import ndimage

    collector, samples = BoxCollector(list(data.class_names[1:])), []
    for s in data.samples:
        mask = s.load_mask()
        boxes, labels = [], []
        for c in range(1, len(data.class_names)):
            components, _ = ndimage.label(mask == c, structure=np.ones((3, 3), int))
            for sl in ndimage.find_objects(components):
                boxes.append((float(sl[1].start), float(sl[0].start), float(sl[1].stop), float(sl[0].stop)))
                labels.append(c - 1)
        samples.append(BoxedSample(s.ref, s.load_image, tuple(boxes), tuple(labels), s.split, s.patient_id,
                                   (int(mask.shape[1]), int(mask.shape[0]))))
    return collector.finish(samples, data.name, f"{len(samples)} images, boxes from their masks")


@register_source
class MaskBoxSource(Source):
    """Any image + mask layout the segmentation sources read (folder pairs, CSV, NIfTI), read as detection data:
    each connected component of a class becomes one box (:func:`boxes_from_masks`). Asked for by name
    (``--task detection``), never told from the layout, which reads as segmentation."""

    kind = "mask-boxes"

    def __init__(self, spec: str | os.PathLike, **options):
        self.spec, self.options = str(spec), options

    @classmethod
    def can_open(cls, spec: str) -> bool:
        return any(s.can_open(spec) for s in MASK_SOURCES)

    def read(self) -> BoxedImages:
        source = next(s for s in MASK_SOURCES if s.can_open(self.spec))
        return boxes_from_masks(source(self.spec, **self.options).read())
