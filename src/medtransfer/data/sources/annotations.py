"""The structure of box annotation files (COCO JSON, Pascal VOC XML), checked whole before any of it is used.

Each check raises one :class:`~medtransfer.errors.DataError` naming the file, the entry at fault (a COCO list index
and id, a VOC ``<object>`` and its element) and what is wrong, so that the sources in
:mod:`medtransfer.data.sources.boxes` read the content without guarding each access. What the checks do not cover
(a box's corners against its image, unknown classes) is :class:`~medtransfer.data.sources.boxes.BoxCollector`'s.

Two COCO categories with one name are refused, naming their ids, rather than merged: a file with two ids for one
name is usually an export bug, merging them would change the label space without the user knowing, and the ids in
the message let the user fix the file.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from medtransfer.data.audit import check_spellings
from medtransfer.errors import DataError

#: the columns of a box CSV (one row per box); a CSV manifest with them is a detection data set read by mistake
BOX_COLUMNS = ("image", "x1", "y1", "x2", "y2", "label")


def is_voc_layout(path) -> bool:
    """Whether ``path`` is a Pascal VOC folder (``Annotations/`` + ``JPEGImages/``)."""
    p = Path(path).expanduser()
    return (p / "Annotations").is_dir() and (p / "JPEGImages").is_dir()

COCO_LISTS = ("images", "annotations", "categories")
#: the corners of a VOC ``<bndbox>``, in order
VOC_CORNERS = ("xmin", "ymin", "xmax", "ymax")


_quote = reprlib.Repr()
_quote.maxstring, _quote.maxother, _quote.maxlist = 60, 60, 6


def _show(value) -> str:
    """``repr(value)``, shortened: a message quotes what is wrong, not a whole file."""
    return _quote.repr(value)


def _kind(value) -> str:
    """A JSON value's kind in JSON's words."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite JSON number (an integer too large for a float is not one)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class CocoFile:
    """A COCO file whose structure holds: ``images`` id -> file name, ``categories`` id -> name (in file order),
    ``annotations`` as ``(where, image_id, category_id, (x, y, w, h), iscrowd)``."""

    images: dict
    categories: dict
    annotations: list[tuple[str, object, object, tuple[float, float, float, float], bool]]


def _entries(path: Path, coco: dict, key: str) -> list[tuple[str, dict]]:
    """``(where, entry)`` for each entry of the list ``key``: ``"<path>, annotation 7"`` by its id, or by its index
    where the id is missing or shared. An entry that is not an object is an error."""
    singular = {"images": "image", "annotations": "annotation", "categories": "category"}[key]
    for k, entry in enumerate(coco[key]):
        if not isinstance(entry, dict):
            raise DataError(f"{path}, {key}[{k}]: {_kind(entry)}, not an object; each of {key!r} is one {singular} "
                            f"as a JSON object.")
    ids = [e.get("id") if _is_id(e.get("id")) else None for e in coco[key]]
    shared = {i for i, n in Counter(ids).items() if i is not None and n > 1}
    return [(f"{path}, {singular} {i}" if i is not None and i not in shared else
             f"{path}, {key}[{k}]" + (f" (id {_show(i)})" if i is not None else ""), e)
            for k, (i, e) in enumerate(zip(ids, coco[key]))]


def _unique_ids(path: Path, key: str, entries: list[tuple[str, dict]]) -> None:
    seen: dict = {}
    for k, (where, entry) in enumerate(entries):
        if not _is_id(entry.get("id")):
            raise DataError(f"{where}: 'id' is {_show(entry.get('id'))}; give each of {key!r} a unique integer id.")
        if entry["id"] in seen:
            raise DataError(f"{path}: {key}[{seen[entry['id']]}] and {key}[{k}] share the id {_show(entry['id'])}; "
                            f"ids must be unique within {key!r}.")
        seen[entry["id"]] = k


def _categories(path: Path, entries: list[tuple[str, dict]]) -> dict:
    names: dict = {}
    for where, c in entries:
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'name' is {_show(name)}; give each category its class name.")
        names[c["id"]] = name.strip()
    by_name: dict[str, list] = {}
    for ident, name in names.items():
        by_name.setdefault(name, []).append(ident)
    for name, ids in by_name.items():
        if len(ids) > 1:
            raise DataError(f"{path}: the categories with ids {', '.join(map(_show, ids))} are all named "
                            f"{_show(name)}, which would make one class twice. Give each category its own name, or "
                            f"relabel the annotations of all but one of these ids to that one and remove the others.")
    check_spellings(path, [(name, f"category {ident}") for ident, name in names.items()])
    if not names:
        raise DataError(f"{path}: 'categories' is empty; list each box class as {{\"id\": …, \"name\": …}}.")
    return names


def _annotation(path: Path, where: str, a: dict, images: dict, categories: dict):
    for key, among in (("image_id", images), ("category_id", categories)):
        if key not in a:
            raise DataError(f"{where}: no {key!r}; each annotation names its image and its category.")
        if not _is_id(a[key]) or a[key] not in among:
            what = "images" if among is images else f"categories ({', '.join(map(str, among))})"
            raise DataError(f"{where}: {key} {_show(a[key])} is not among the {what}.")
    if "bbox" not in a:
        raise DataError(f"{where}: no 'bbox'; each annotation needs bbox [x, y, width, height] in pixels.")
    box = a["bbox"]
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise DataError(f"{where}: bbox {_show(box)} is not four finite numbers [x, y, width, height].")
    crowd = a.get("iscrowd", 0)
    if crowd not in (0, 1):
        raise DataError(f"{where}: iscrowd {_show(crowd)} is not 0 or 1.")
    return where, a["image_id"], a["category_id"], tuple(float(v) for v in box), bool(crowd)


def read_coco(path: Path) -> CocoFile:
    """The COCO file at ``path``, its structure checked: the three lists, every entry's fields and their types,
    unique ids, one name per category, every reference to an image or a category."""
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: lists nested thousands deep
        raise DataError(f"{path}: not a readable JSON file ({e}).") from None
    if not isinstance(coco, dict):
        raise DataError(f"{path}: the file holds {_kind(coco)}; a COCO file is an object with the lists "
                        f"{', '.join(map(repr, COCO_LISTS))}.")
    missing = [k for k in COCO_LISTS if k not in coco]
    if missing:
        raise DataError(f"{path}: no {' or '.join(map(repr, missing))}; a COCO file holds the lists "
                        f"{', '.join(map(repr, COCO_LISTS))}. Export the file again with all three.")
    for key in COCO_LISTS:
        if not isinstance(coco[key], list):
            raise DataError(f"{path}: {key!r} is {_kind(coco[key])}, not a list; give {key!r} as a JSON list "
                            f"[{{…}}, …].")
    images_in, categories_in = _entries(path, coco, "images"), _entries(path, coco, "categories")
    annotations_in = _entries(path, coco, "annotations")
    _unique_ids(path, "images", images_in)
    _unique_ids(path, "categories", categories_in)
    images = {}
    for where, im in images_in:
        name = im.get("file_name")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'file_name' is {_show(name)}; give each image its path (relative to the "
                            f"JSON file's folder, or to image_root).")
        images[im["id"]] = name
    if not images:
        raise DataError(f"{path}: 'images' is empty; there is nothing to train or test on.")
    categories = _categories(path, categories_in)
    annotations = [_annotation(path, where, a, images, categories) for where, a in annotations_in]
    return CocoFile(images, categories, annotations)


@dataclass(frozen=True)
class VocObject:
    """One ``<object>`` of a VOC file: where it is (for messages), its class and its corners as written (1-based,
    inclusive)."""

    where: str
    name: str
    corners: tuple[float, float, float, float]


def read_voc(xml: Path) -> tuple[str | None, list[VocObject]]:
    """``(filename, objects)`` of the VOC annotation ``xml``, its structure checked: the root element, and for every
    ``<object>`` a ``<name>`` and a ``<bndbox>`` of four numbers."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise DataError(f"{xml}: not valid XML ({e}).") from None
    except OSError as e:
        raise DataError(f"{xml}: cannot be read ({e.strerror or e}).") from None
    if root.tag != "annotation":
        raise DataError(f"{xml}: the root element is <{root.tag}>, not <annotation>; is this a Pascal VOC file?")
    objects = []
    for k, obj in enumerate(root.iter("object"), start=1):
        where = f"{xml}, object {k}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DataError(f"{where}: no <name> (the box's class); add one, or remove the <object>.")
        bb = obj.find("bndbox")
        texts = [bb.findtext(t) if bb is not None else None for t in VOC_CORNERS]
        if None in texts:
            raise DataError(f"{where}: no complete <bndbox> (xmin, ymin, xmax, ymax).")
        corners = []
        for tag, text in zip(VOC_CORNERS, texts):
            try:
                corners.append(float(text))
            except ValueError:
                raise DataError(f"{where}: <{tag}> is {_show(text.strip())}, not a number; corners are pixel "
                                f"coordinates.") from None
        objects.append(VocObject(where, name, tuple(corners)))
    filename = (root.findtext("filename") or "").strip() or None
    return filename, objects


def image_inside(folder: Path, name: str, where: str) -> Path:
    """``folder / name``, refused when ``name`` is absolute or climbs out of ``folder`` with ``..``: an annotation
    names an image of its own data set, never a file elsewhere on the machine. The test is on the text (symbolic
    links inside the data set still work)."""
    parts = Path(os.path.normpath(name)).parts
    if Path(name).is_absolute() or name.startswith("~") or (parts and parts[0] == ".."):
        raise DataError(f"{where}: {_show(name)} points outside {folder}; name the image by its path inside that "
                        f"folder, and keep the images there.")
    return folder / name
