"""Segmentation sources: mask folders, CSV lists and NIfTI volumes, and every mask rule."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medtransfer.data.sources.base import SOURCES
from medtransfer.data.sources import open_source
from medtransfer.data.sources.mask_sources import MaskCsvSource, MaskFolderSource
from medtransfer.data.sources.nifti_slices import NiftiVolumeSource
from medtransfer.errors import ConfigError, DataError
from medtransfer.tasks import get_task


def open_segmentation_source(spec, **options):
    return open_source(spec, sources=get_task("segmentation").inputs.sources, **options)


def read_segmentation_source(spec, **options):
    return get_task("segmentation").inputs.read(str(spec), **options)


def save(path: Path, array: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, **kw)
    return path


def square_mask(h: int = 8, w: int = 10, value: int = 255) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[2:5, 3:7] = value
    return m


def image(h: int = 8, w: int = 10, value: int = 100) -> np.ndarray:
    return np.full((h, w), value, np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "seg"
    for stem in ("b", "a"):
        save(root / "images" / f"{stem}.png", image())
        save(root / "masks" / f"{stem}.png", square_mask())
    return root


def test_folder_pairs_by_stem_and_binary_255(folder: Path):
    data = MaskFolderSource(folder).read()
    assert [Path(s.ref).name for s in data.samples] == ["a.png", "b.png"]
    assert [Path(s.mask_ref).name for s in data.samples] == ["a.png", "b.png"]
    assert data.class_names == ["background", "foreground"] and data.num_classes == 2
    mask = data.samples[0].load_mask()
    assert mask.dtype == np.uint8 and mask.shape == (8, 10)
    assert set(np.unique(mask)) == {0, 1} and mask.sum() == 12
    assert data.samples[0].load_image().shape == (8, 10)
    assert data.samples[0].split is None and data.samples[0].patient_id is None
    assert SOURCES["mask-folder"] is MaskFolderSource and SOURCES["nifti"] is NiftiVolumeSource  # one registry


def test_mask_extension_may_differ_and_mask_suffix(tmp_path: Path):
    root = tmp_path / "seg"
    save(root / "images" / "case1.jpg", image())
    save(root / "masks" / "case1_mask.png", square_mask())
    data = MaskFolderSource(root, mask_suffix="_mask").read()
    assert len(data.samples) == 1 and Path(data.samples[0].mask_ref).name == "case1_mask.png"
    with pytest.raises(DataError, match="without a partner"):
        MaskFolderSource(root).read()


def test_unmatched_files_are_named(folder: Path):
    save(folder / "images" / "lonely.png", image())
    with pytest.raises(DataError, match=r"1 file\(s\) without a partner.*lonely\.png"):
        MaskFolderSource(folder).read()
    (folder / "images" / "lonely.png").unlink()
    save(folder / "masks" / "orphan.png", square_mask())
    with pytest.raises(DataError, match=r"orphan\.png"):
        MaskFolderSource(folder).read()


def test_jpeg_mask_is_thresholded(tmp_path: Path):
    root = tmp_path / "seg"
    save(root / "images" / "a.png", image())
    m = np.zeros((8, 10), np.uint8)
    m[:, 5:] = 250
    m[0, 0] = 90  # JPEG-like noise below the threshold
    save(root / "masks" / "a.jpg", m, quality=95)
    mask = MaskFolderSource(root).read().samples[0].load_mask()
    assert set(np.unique(mask)) <= {0, 1}
    assert mask[:, 7:].all() and not mask[:, :3].any()


def test_multiclass_masks_and_class_names(tmp_path: Path):
    root = tmp_path / "seg"
    m = np.zeros((8, 10), np.uint8)
    m[1:3, 1:3], m[5:7, 5:7] = 1, 2
    save(root / "images" / "a.png", image())
    save(root / "masks" / "a.png", m)
    data = MaskFolderSource(root).read()
    assert data.class_names == ["background", "class_1", "class_2"]
    np.testing.assert_array_equal(data.samples[0].load_mask(), m)
    named = MaskFolderSource(root, class_names=["bg", "liver", "tumour", "vessel"]).read()
    assert named.class_names == ["bg", "liver", "tumour", "vessel"]


def test_unknown_label_value_is_an_error(tmp_path: Path):
    root = tmp_path / "seg"
    m = np.zeros((8, 10), np.uint8)
    m[0, 0] = 7
    save(root / "images" / "a.png", image())
    save(root / "masks" / "a.png", m)
    with pytest.raises(DataError, match=r"a\.png: mask value 7 is not a class index 0\.\.2"):
        MaskFolderSource(root, class_names=["bg", "x", "y"]).read()


def test_gray_png_mask_is_an_error(tmp_path: Path):
    root = tmp_path / "seg"
    save(root / "images" / "a.png", image())
    save(root / "images" / "b.png", image())
    save(root / "masks" / "a.png", square_mask())
    gray = square_mask()
    gray[2, 3] = 37  # anti-aliased edge
    save(root / "masks" / "b.png", gray)
    with pytest.raises(DataError, match=r"b\.png: mask value 37 is neither 0 nor 255"):
        MaskFolderSource(root).read()
    (root / "masks" / "a.png").unlink()
    (root / "images" / "a.png").unlink()
    with pytest.raises(DataError, match=r"b\.png: mask value 37 is not a class index 0\.\.2"):
        MaskFolderSource(root, class_names=["bg", "a", "b"]).read()


def test_gray_levels_without_255_are_not_taken_for_classes(tmp_path: Path):
    root = tmp_path / "seg"
    save(root / "images" / "a.png", image())
    save(root / "masks" / "a.png", square_mask(value=37))
    with pytest.raises(DataError, match=r"a\.png: mask value 37 is not a class index"):
        MaskFolderSource(root).read()


def test_size_mismatch_names_the_file(folder: Path):
    save(folder / "masks" / "b.png", square_mask(h=9))
    with pytest.raises(DataError, match=r"masks/b\.png: mask size 9×10 differs from its image .*b\.png \(8×10"):
        MaskFolderSource(folder).read()


def test_colour_mask_is_an_error(folder: Path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 255
    save(folder / "masks" / "a.png", rgb)
    with pytest.raises(DataError, match=r"a\.png: colour mask"):
        MaskFolderSource(folder).read()


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def test_csv_pairs_splits_patients(folder: Path):
    csv = write_csv(folder / "list.csv", """
image,mask,split,patient_id
images/a.png,masks/a.png,train,p1
images/b.png,masks/b.png,valid,p2
""")
    data = MaskCsvSource(csv).read()
    assert [s.split for s in data.samples] == ["train", "val"]
    assert [s.patient_id for s in data.samples] == ["p1", "p2"]
    assert data.samples[1].load_mask().sum() == 12
    assert isinstance(open_segmentation_source(csv), MaskCsvSource)


def test_csv_missing_column(folder: Path):
    csv = write_csv(folder / "list.csv", "image,label\nimages/a.png,masks/a.png\n")
    with pytest.raises(DataError, match=r"list\.csv, line 1: no 'mask' column"):
        MaskCsvSource(csv).read()


def test_csv_line_errors(folder: Path):
    csv = write_csv(folder / "list.csv", "image,mask\nimages/a.png,masks/a.png\nimages/b.png,masks/zzz.png\n")
    with pytest.raises(DataError, match=r"list\.csv, line 3: mask 'masks/zzz\.png' not found"):
        MaskCsvSource(csv).read()
    csv = write_csv(folder / "list.csv", "image,mask\nimages/a.png,\n")
    with pytest.raises(DataError, match=r"list\.csv, line 2: empty 'mask' cell"):
        MaskCsvSource(csv).read()
    csv = write_csv(folder / "list.csv", "image,mask,split\nimages/a.png,masks/a.png,training\n")
    with pytest.raises(DataError, match=r"list\.csv, line 2: unknown split 'training'"):
        MaskCsvSource(csv).read()
    save(folder / "masks" / "big.png", square_mask(h=20))
    csv = write_csv(folder / "list.csv", "image,mask\nimages/a.png,masks/a.png\nimages/b.png,masks/big.png\n")
    with pytest.raises(DataError, match=r"list\.csv, line 3: .*big\.png: mask size 20×10 differs"):
        MaskCsvSource(csv).read()


def nifti(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


@pytest.fixture
def volumes(tmp_path: Path) -> Path:
    root = tmp_path / "ct"
    rng = np.random.default_rng(0)
    for stem, shape in (("vol1", (6, 7, 4)), ("vol2", (6, 7, 3))):
        img = rng.normal(0, 100, shape).astype(np.float32)
        lab = np.zeros(shape, np.uint8)
        lab[1:3, 2:5, 1] = 1
        lab[4, 4, 0] = 2
        nifti(root / "images" / f"{stem}.nii.gz", img)
        nifti(root / "labels" / f"{stem}.nii" if stem == "vol2" else root / "labels" / f"{stem}.nii.gz", lab)
    return root


def test_nifti_slices_and_patients(volumes: Path):
    source = open_segmentation_source(volumes)
    assert isinstance(source, NiftiVolumeSource)
    data = source.read()
    assert len(data.samples) == 4 + 3  # depth along axis 2
    assert [s.patient_id for s in data.samples] == ["vol1"] * 4 + ["vol2"] * 3
    assert data.class_names == ["background", "class_1", "class_2"]
    img = data.samples[1].load_image()
    assert img.dtype == np.uint8 and img.shape == (6, 7)
    vol = np.asanyarray(nib.load(str(volumes / "images" / "vol1.nii.gz")).dataobj)
    scaled = np.round((vol - vol.min()) / (vol.max() - vol.min()) * 255)
    np.testing.assert_array_equal(img, scaled[:, :, 1])  # per-volume min–max, not per slice
    mask = data.samples[1].load_mask()
    assert mask.dtype == np.uint8 and mask.sum() == 6
    assert data.samples[0].load_mask()[4, 4] == 2


def test_nifti_axis_and_window(volumes: Path):
    data = NiftiVolumeSource(volumes, axis=0, window=(0, 200)).read()
    assert len(data.samples) == 6 + 6
    assert data.samples[0].load_image().shape == (7, 4)
    vol = np.asanyarray(nib.load(str(volumes / "images" / "vol1.nii.gz")).dataobj)
    expected = np.round(np.clip((vol[0] + 100) / 200, 0, 1) * 255)
    np.testing.assert_array_equal(data.samples[0].load_image(), expected)
    with pytest.raises(ConfigError, match="axis"):
        NiftiVolumeSource(volumes, axis=3)


def test_nifti_shape_mismatch_and_unmatched(volumes: Path):
    nifti(volumes / "labels" / "vol2.nii", np.zeros((6, 7, 5), np.uint8))
    with pytest.raises(DataError, match=r"vol2\.nii: label volume shape \(6, 7, 5\) differs"):
        NiftiVolumeSource(volumes).read()
    (volumes / "labels" / "vol2.nii").unlink()
    with pytest.raises(DataError, match=r"vol2\.nii\.gz"):
        read_segmentation_source(volumes)


def test_dispatch(folder: Path, tmp_path: Path):
    assert isinstance(open_segmentation_source(folder), MaskFolderSource)
    with pytest.raises(ConfigError, match="unknown source kind 'foldr'"):
        open_segmentation_source(folder, kind="foldr")
    with pytest.raises(DataError, match="no such file"):
        open_segmentation_source(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell how to read"):
        open_segmentation_source(tmp_path / "empty")


def test_slices_of_one_volume_stay_in_one_split(tmp_path: Path):
    from medtransfer.data import make_split, training_subset

    rng = np.random.default_rng(1)
    for v in range(12):
        shape = (8, 8, int(rng.integers(3, 7)))
        lab = np.zeros(shape, np.uint8)
        lab[2:5, 2:5] = 1
        nifti(tmp_path / "images" / f"v{v:02d}.nii.gz", rng.normal(0, 1, shape).astype(np.float32))
        nifti(tmp_path / "labels" / f"v{v:02d}.nii.gz", lab)
    data = read_segmentation_source(tmp_path)
    split = make_split(data, seed=3, test_fraction=0.1)
    volume = np.asarray([s.patient_id for s in data.samples])
    parts = [set(volume[split.train]), set(volume[split.val]), set(volume[split.test])]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    half = training_subset(data, split.train, 0.5, seed=0)
    assert set(half) < set(split.train)
