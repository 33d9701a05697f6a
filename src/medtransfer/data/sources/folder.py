"""Image folders: ``root/<class>/<images>`` or ``root/<split>/<class>/<images>``.

The split folders are ``train``, ``val`` (or ``valid``, ``validation``) and ``test``. Images may sit in sub-folders
of a class folder (e.g. one folder per patient). Hidden files and folders and files that are not images are skipped;
so are named pipes, sockets and devices named like images, with a notice on the data set.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from medtransfer.data.audit import check_spellings
from medtransfer.data.sources.base import (
    SPLITS,
    LabelledImages,
    Sample,
    Source,
    register_source,
)
from medtransfer.data.sources.image_files import (
    IMAGE_SUFFIXES,
    image_patient_id,
    is_image_file,
    read_image_file,
)
from medtransfer.data.sources.annotations import is_voc_layout
from medtransfer.data.sources.special_files import is_special_file, skipped_notice
from medtransfer.data.sources.unread_formats import unread_hint, unread_images, unread_notice
from medtransfer.errors import DataError

#: Folder or CSV split names (lower case) and the split they stand for.
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def canonical_split(name: str) -> str | None:
    """``"train"``, ``"val"`` or ``"test"`` for a split name or alias (any case), else ``None``."""
    return SPLIT_ALIASES.get(name.strip().lower())


def _visible(entry: os.DirEntry | Path) -> bool:
    return not entry.name.startswith(".")


def _subdirs(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    with os.scandir(folder) as it:
        return sorted((Path(e.path) for e in it if _visible(e) and e.is_dir()), key=lambda p: p.name)


def _image_files(folder: Path, skipped: list[Path]) -> list[Path]:
    """The image files anywhere under ``folder`` (hidden ones excluded), sorted by path; those named like images
    that are not regular files (named pipes, sockets, devices) go to ``skipped`` instead."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = (Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
        for f in files:
            if is_image_file(f):
                (skipped if is_special_file(f) else found).append(f)
    return found


def _has_image(folder: Path) -> bool:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(not f.startswith(".") and is_image_file(Path(dirpath, f)) and not is_special_file(Path(dirpath, f))
               for f in filenames):
            return True
    return False


def _is_segmentation_layout(root: Path) -> bool:
    names = {p.name.lower() for p in _subdirs(root)}
    return {"images", "masks"} <= names


#: an image of a class folder: (its given split or None, its class, the file)
ClassFile = tuple[str | None, str, Path]


def _split_groups(root: Path) -> list[tuple[str | None, Path]]:
    """(split, folder of class folders): the given split folders of ``root``, or ``root`` itself without them."""
    top = _subdirs(root)
    if not top:
        raise DataError(f"{root}: no class folders in it. Lay the images out as {root.name}/<class>/<image>.")
    splits = {p: canonical_split(p.name) for p in top}
    split_dirs = [p for p in top if splits[p] is not None]
    if split_dirs:
        others = [p.name for p in top if splits[p] is None]
        if others:
            raise DataError(
                f"{root}: mixes split folders ({', '.join(p.name for p in split_dirs)}) with other folders "
                f"({', '.join(others)}). Put every class folder inside {'/'.join(SPLITS)} folders, or none."
            )
        seen: dict[str, str] = {}
        for p in split_dirs:
            split = splits[p]
            assert split is not None
            if split in seen:
                raise DataError(f"{root}: both {seen[split]}/ and {p.name}/ are the {split!r} split. Merge them.")
            seen[split] = p.name
        groups = [(splits[p], p) for p in split_dirs]
    else:
        groups = [(None, root)]
    return groups


def _class_files(root: Path, groups: list[tuple[str | None, Path]]) -> tuple[list[ClassFile], list[str]]:
    """(split, class, file) of every image in the class folders of ``groups``, and the notices of what was skipped."""
    files: list[ClassFile] = []
    skipped: list[Path] = []  # pipes, sockets, devices named like images
    unread: list[Path] = []  # images in formats that are not read: skipped, with a notice
    for split, folder in groups:
        class_dirs = _subdirs(folder)
        if not class_dirs:
            raise DataError(f"{folder}: no class folders in it. Put the images in {folder.name}/<class>/<image>.")
        for class_dir in class_dirs:
            images = _image_files(class_dir, skipped)
            if not images:
                raise DataError(
                    f"{class_dir}: class folder holds no images (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM "
                    f"files).{unread_hint(class_dir)} Add images or remove the folder."
                )
            files.extend((split, class_dir.name, f) for f in images)
        unread += unread_images(class_dirs)
    notices = [skipped_notice(skipped, root)] if skipped else []
    return files, notices + ([unread_notice(unread, root)] if unread else [])


@register_source
class ImageFolderSource(Source):
    """A folder with one sub-folder of images per class, optionally inside ``train``/``val``/``test`` folders.

    Classes are the class-folder names, sorted. ``window=(centre, width)`` is passed on to the DICOM reader. A DICOM
    file's patient id is a salted hash of its header's Patient ID (or Study UID), so that splits are grouped by patient.
    """

    kind = "folder"

    def __init__(self, root: str | os.PathLike, *, window: tuple[float, float] | None = None):
        self.root = Path(root).expanduser()
        self.window = window

    @classmethod
    def can_open(cls, spec: str) -> bool:
        root = Path(spec).expanduser()
        try:
            if not root.is_dir() or _is_segmentation_layout(root):
                return False
            return any(_has_image(sub) for sub in _subdirs(root))
        except OSError:
            return False

    def read(self) -> LabelledImages:
        root = self.root
        if not root.is_dir():
            what = "not a folder" if root.exists() else "no such folder"
            raise DataError(f"{root}: {what}. Give a folder laid out as <class>/<image> or <split>/<class>/<image>.")
        if is_voc_layout(root):  # its Annotations/ would read as a class folder without images
            raise DataError(f"{root}: a detection data set (Pascal VOC: images in JPEGImages/, boxes in "
                            f"Annotations/*.xml), not class folders of images. Use it with --task detection, or "
                            f"evaluate a detection model on it.")
        files, notices = _class_files(root, _split_groups(root))
        check_spellings(root, [(c, f"folder {f.parent}") for _, c, f in files])
        class_names = sorted({c for _, c, _ in files})
        if len(class_names) < 2:
            raise DataError(
                f"{root}: only one class folder ({class_names[0]!r}); classification needs at least two. "
                f"Add a folder per class."
            )
        index = {c: i for i, c in enumerate(class_names)}
        # DICOM files carry their patient (a salted hash of the header's Patient ID or Study UID), so that a seeded
        # split keeps each patient's images together; other images have no patient.
        samples = [
            Sample(ref=str(f), load=partial(read_image_file, f, window=self.window), target=index[c], split=split,
                   patient_id=image_patient_id(f))
            for split, c, f in files
        ]
        patients = len({s.patient_id for s in samples if s.patient_id})
        return LabelledImages(
            samples=samples,
            class_names=class_names,
            label_kind="binary" if len(class_names) == 2 else "multiclass",
            name=root.resolve().name or str(root),
            description=f"{len(samples)} images in {len(class_names)} class folders"
            + (f", {patients} patients (from the DICOM headers)" if patients else ""),
            notices=notices,
        )
