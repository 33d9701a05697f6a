"""MedMNIST ``.npz`` files, from a path or by name through the ``medmnist`` package's download and cache."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from medtransfer.data.sources.base import (
    LabelledImages,
    Sample,
    Source,
    register_source,
    to_uint8_image,
)
from medtransfer.errors import DataError, did_you_mean

_NAME = re.compile(r"^(?P<flag>[a-z]+mnist(?:3d)?)(?:_(?P<size>\d+))?$")
_MODALITIES = {
    "breastmnist": "breast ultrasound",
    "pneumoniamnist": "chest X-ray",
    "chestmnist": "chest X-ray",
    "dermamnist": "dermatoscopy",
    "octmnist": "retinal OCT",
    "retinamnist": "fundus photography",
    "bloodmnist": "blood cell microscopy",
    "tissuemnist": "kidney cortex microscopy",
    "pathmnist": "colon pathology",
    "organamnist": "abdominal CT",
    "organcmnist": "abdominal CT",
    "organsmnist": "abdominal CT",
}


def medmnist_root() -> Path:
    """The cache folder the ``medmnist`` package downloads into (``$MEDMNIST_ROOT`` or ``~/.medmnist``)."""
    return Path(os.environ.get("MEDMNIST_ROOT", Path.home() / ".medmnist")).expanduser()


def _info(flag: str) -> dict | None:
    from medmnist import INFO

    return INFO.get(flag)


@register_source
class MedMNISTSource(Source):
    """A MedMNIST 2D dataset: ``breastmnist``, ``breastmnist_128`` or a path to such an ``.npz`` file.

    The official train/val/test split of the file is kept. 3D datasets are refused.
    """

    kind = "medmnist"

    def __init__(self, spec: str | os.PathLike, *, download: bool = True):
        self.spec = str(spec)
        self.download = download

    @classmethod
    def can_open(cls, spec: str) -> bool:
        p = Path(spec)
        if p.suffix == ".npz":
            return True
        m = _NAME.match(str(spec).lower())
        return bool(m) and not p.exists()

    @classmethod
    def hint(cls, spec: str) -> str:
        from medmnist import INFO

        return f", and not a MedMNIST dataset name{did_you_mean(str(spec).lower(), INFO) or ' (e.g. breastmnist)'}"

    # -- locating the file -------------------------------------------------------------------------------
    def _path(self) -> tuple[Path, str | None]:
        p = Path(self.spec).expanduser()
        if p.suffix == ".npz":
            if not p.is_file():
                raise DataError(f"{p}: no such MedMNIST file. Check the path, or give a dataset name such as 'breastmnist'.")
            m = _NAME.match(p.stem.lower())
            return p, (m.group("flag") if m else None)
        m = _NAME.match(self.spec.lower())
        assert m is not None
        flag, size = m.group("flag"), m.group("size")
        info = _info(flag)
        if info is None:
            from medmnist import INFO

            raise DataError(f"unknown MedMNIST dataset {flag!r}{did_you_mean(flag, INFO)}; known: {', '.join(INFO)}")
        if flag.endswith("3d"):
            raise DataError(f"{flag} is a 3D dataset; medtransfer studies 2D images. Use a 2D MedMNIST dataset.")
        root = medmnist_root()
        fname = f"{flag}.npz" if size in (None, "28") else f"{flag}_{size}.npz"
        path = root / fname
        if not path.is_file():
            if not self.download:
                raise DataError(f"{path}: not in the MedMNIST cache and downloading is off.")
            self._download(info, flag, size, root)
        return path, flag

    @staticmethod
    def _download(info: dict, flag: str, size: str | None, root: Path) -> None:
        import medmnist

        root.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, info["python_class"])
        kwargs = {"split": "test", "download": True, "root": str(root)}
        if size not in (None, "28"):
            kwargs["size"] = int(size)
        try:
            cls(**kwargs)
        except Exception as e:  # network failures surface as many different exception types
            raise DataError(
                f"could not download {flag} into {root} ({type(e).__name__}: {e}). "
                f"Connect to the internet, or pass the .npz file's path with --data."
            ) from None

    # -- reading -----------------------------------------------------------------------------------------
    def read(self) -> LabelledImages:
        path, flag = self._path()
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{path}: not a readable .npz file ({e}). Download it again.") from None
        missing = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels") if f"{s}_{k}" not in arrays]
        if missing:
            raise DataError(f"{path}: not a MedMNIST file: missing arrays {', '.join(missing)}")
        info = _info(flag) if flag else None
        _check_labels(path, arrays, info)
        labels_all = np.concatenate([arrays[f"{s}_labels"].reshape(len(arrays[f"{s}_labels"]), -1) for s in ("train", "val", "test")])
        if arrays["train_images"].ndim == 4 and arrays["train_images"].shape[-1] not in (1, 3):
            raise DataError(f"{path}: holds 3D volumes; medtransfer studies 2D images.")
        task = info["task"] if info else ("multi-label, binary-class" if labels_all.shape[1] > 1 else "multi-class")
        if task.startswith("multi-label"):
            kind = "multilabel"
            n = labels_all.shape[1]
            names = [info["label"][str(i)] for i in range(n)] if info else [f"label_{i}" for i in range(n)]
        else:
            n = int(labels_all.max()) + 1
            if info:
                n = max(n, len(info["label"]))
            names = [info["label"][str(i)] for i in range(n)] if info else [str(i) for i in range(n)]
            kind = "binary" if n == 2 else "multiclass"
        samples: list[Sample] = []
        for split in ("train", "val", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            labels = labels.reshape(len(labels), -1)
            for i in range(len(images)):
                ref = f"{path.name}[{split}][{i}]"
                target = tuple(int(v) for v in labels[i]) if kind == "multilabel" else int(labels[i, 0])
                samples.append(Sample(ref=ref, load=_ArrayImage(images, i, ref), target=target, split=split))
        return LabelledImages(
            samples=samples,
            class_names=names,
            label_kind=kind,
            name=flag or path.stem,
            modality=_MODALITIES.get(flag or ""),
            description=(info or {}).get("description", ""),
            official_split=True,
        )


def _check_labels(path: Path, arrays: dict, info: dict | None) -> None:
    """One label row per image; labels whole, non-negative and within the dataset's classes."""
    n_classes = len(info["label"]) if info else None
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{path}: {split} holds {len(images)} images but {len(labels)} labels; the file is damaged or "
                            f"was written wrongly. Give one label row per image.")
        values = np.asarray(labels).reshape(len(labels), -1)
        if values.dtype.kind not in "iub":
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(values.astype(np.float64)) | (values.astype(np.float64) != np.round(values.astype(np.float64)))
            if bad.any():
                i = int(np.argwhere(bad)[0][0])
                raise DataError(f"{path}: {split}_labels[{i}] is {values[i].tolist()}, not a whole number; labels are "
                                f"class indices (0, 1, …).")
        values = values.astype(np.int64)
        # an unknown file with several label columns is read as multi-label (see read): its targets are 0 or 1
        multilabel = info["task"].startswith("multi-label") if info else values.shape[1] > 1
        top = 1 if multilabel else (n_classes - 1 if n_classes else None)
        bad = (values < 0) | ((values > top) if top is not None else np.zeros_like(values, dtype=bool))
        if bad.any() and multilabel:
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise DataError(f"{path}: {split}_labels[{i}] holds {int(values[i, j])} in column {j}; multi-label targets "
                            f"are 0 (absent) or 1 (present), and {int(bad.any(1).sum())} {split} label row(s) hold "
                            f"other values. Fix the labels.")
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            valid = f"0 to {top}" if top is not None else "0 or more"
            raise DataError(f"{path}: {split}_labels[{i}] holds label {int(values[i, j])}, outside the dataset's classes "
                            f"({valid}); {int(bad.any(1).sum())} {split} label(s) are out of range. Fix the labels.")


class _ArrayImage:
    """A loader for one image of an in-memory array (picklable, unlike a lambda)."""

    __slots__ = ("array", "index", "ref")

    def __init__(self, array: np.ndarray, index: int, ref: str):
        self.array, self.index, self.ref = array, index, ref

    def __call__(self) -> np.ndarray:
        return to_uint8_image(self.array[self.index], self.ref)
