"""Test helpers: generated images and the in-process command line (importable from any test module)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def shape_image(kind: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """A gray image: noise with a bright disk or a dimmer square at a random place."""
    img = rng.normal(70, 20, (size, size))
    r = size // 5
    cy, cx = rng.integers(r + 2, size - r - 2, 2)
    yy, xx = np.mgrid[:size, :size]
    if kind == "disk":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    else:
        mask = (abs(yy - cy) <= r * 0.8) & (abs(xx - cx) <= r * 0.8)
    img[mask] += 150 if kind == "disk" else 90
    return np.clip(img, 0, 255).astype(np.uint8)


def write_shape_folder(root: Path, n_per_class: int = 30, seed: int = 0, classes=("disk", "square")) -> Path:
    """``root/<class>/<i>.png`` with generated images."""
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(shape_image(c, rng)).save(root / c / f"{c}_{i:03d}.png")
    return root


def blob_pair(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image of textured noise with one brighter ellipse, and its mask ({0, 255})."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    ry, rx = rng.uniform(0.12, 0.25, 2) * size
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    img = rng.normal(80, 25, (size, size, 3))
    img[mask] += (110, 60, 40)
    return np.clip(img, 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


def write_mask_folder(root: Path, n: int = 40, seed: int = 0, size: int = 64) -> Path:
    """``root/images/<i>.png`` + ``root/masks/<i>.png``: generated blobs and their binary masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, mask = blob_pair(rng, size)
        Image.fromarray(img).save(root / "images" / f"case_{i:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"case_{i:03d}.png")
    return root


def trial_setup(folder: Path, input_size: int, train, **config):
    """(RunConfig, PreparedData, TrialImages) for trials on ``folder`` with augmentation off and a float32 cache."""
    from medtransfer import RunConfig
    from medtransfer.engine import TrialImages, prepare_data

    cfg = RunConfig(data=str(folder), input_size=input_size, augmentation="none", cache_dtype="float32", train=train,
                    **config)
    prepared = prepare_data(cfg)
    return cfg, prepared, TrialImages.load(prepared, cfg.input_size)


def assert_cache_changes_nothing(cfg, prepared, images, cache, metric: str) -> None:
    """A cached and an uncached trial with the same seed: the same per-epoch losses, the same test ``metric``."""
    from medtransfer.engine import run_trial

    with_cache = run_trial(cfg, prepared, images, cache=cache)
    without = run_trial(cfg, prepared, images)
    assert with_cache.fit.cached and not without.fit.cached
    np.testing.assert_allclose([h["train_loss"] for h in with_cache.fit.history],
                               [h["train_loss"] for h in without.fit.history], rtol=1e-4, atol=1e-5)
    assert abs(with_cache.test_metrics[metric]["value"] - without.test_metrics[metric]["value"]) <= 0.005


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the ``medtransfer`` entry point in-process; (exit code, stdout, stderr)."""
    from medtransfer.cli import main

    old = sys.argv
    sys.argv = ["medtransfer", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def gray_dicom(rows: int, columns: int, pixels: np.ndarray, **tags):
    """A 16-bit MONOCHROME2 Secondary Capture dataset holding ``pixels`` (``rows × columns``), with ``tags`` set;
    save it with ``ds.save_as(path, enforce_file_format=True)``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.asarray(pixels, dtype="<u2").tobytes()
    return ds


def write_box_csv(root: Path, n: int = 48, seed: int = 0, size: int = 96) -> Path:
    """``root/boxes.csv`` (image,x1,y1,x2,y2,label) over RGB images of noise with bright discs ("cell") and dim
    squares ("blob"), one to three objects each; every eighth image holds none (listed with empty box cells)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = ["image,x1,y1,x2,y2,label"]
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = rng.normal(60, 12, (size, size, 3))
        name = f"images/{i:03d}.png"
        count = 0 if i % 8 == 7 else int(rng.integers(1, 4))
        for _ in range(count):
            r = int(rng.integers(7, 13))
            cy, cx = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
            kind = "cell" if rng.random() < 0.5 else "blob"
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if kind == "cell" else (
                (abs(yy - cy) <= r) & (abs(xx - cx) <= r))
            img[inside] = (230, 80, 80) if kind == "cell" else (80, 200, 90)
            rows.append(f"{name},{cx - r},{cy - r},{cx + r + 1},{cy + r + 1},{kind}")
        if not count:
            rows.append(f"{name},,,,,")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name)
    (root / "boxes.csv").write_text("\n".join(rows) + "\n")
    return root / "boxes.csv"


def user_error(result, *needles) -> str:
    """The one-line message of a refused command (exit 2, no traceback, one ``error:``), checked to name each of
    ``needles``; whitespace runs (the console's line folds) read as one space."""
    code, _, err = result
    assert code == 2, err
    text = " ".join(err.split())
    assert "Traceback" not in err and err.strip().startswith("error:") and err.count("error:") == 1, err
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"
    return text


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; a study's SQLite file by its rows (a reader touches its shared-memory index)."""
    import sqlite3

    out = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
           if p.is_file() and not p.name.endswith(("-shm", "-wal", ".sqlite"))}
    for db in folder.rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            out[str(db.relative_to(folder))] = repr([sorted(con.execute(f"SELECT * FROM {t}").fetchall())
                                                     for t in tables]).encode()
    return out


def run_cli_subprocess(args: list, timeout: float = 300) -> tuple[int, str, str]:
    """The command line in a child process, killed after ``timeout`` s: a read that blocks fails the test, not the
    suite."""
    import os
    import subprocess

    import pytest

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-m", "medtransfer.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"medtransfer {' '.join(map(str, args))} did not end in {timeout} s (a blocking read?)")
    return done.returncode, done.stdout, done.stderr
