"""Audits before training: a repeated image, an image with two labels, one label spelt two ways, a patient in two
splits, labels outside the classes, masks that are not the documented encodings. Each is one DataError naming the
file (line, sample or value) and what to do; through the command line, exit code 2 and nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from generated import run_cli, shape_image, write_mask_folder
from PIL import Image

from medtransfer.data import make_split, read_source
from medtransfer.errors import DataError
from medtransfer.tasks import get_task


def images(folder: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.fromarray(shape_image("disk" if i % 2 else "square", rng)).save(folder / f"{i:02d}.png")
        names.append(f"{i:02d}.png")
    return names


def manifest(folder: Path, rows: list[str], header: str = "path,label") -> Path:
    (folder / "m.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return folder / "m.csv"


def test_every_row_listed_twice(tmp_path):
    names = images(tmp_path, 12)
    rows = [f"{n},{'a' if i % 2 else 'b'}" for i, n in enumerate(names)]
    with pytest.raises(DataError, match=r"m\.csv, lines 2 and 14: '00\.png' is listed twice \(12 repeated row"):
        read_source(manifest(tmp_path, rows + rows))


def test_one_image_with_two_labels(tmp_path):
    names = images(tmp_path, 12)
    rows = [f"{n},{'a' if i % 2 else 'b'}" for i, n in enumerate(names)] + [f"./{names[3]},b"]
    with pytest.raises(DataError, match=r"lines 5 and 14: '\./03\.png' has two labels \(a and b\)"):
        read_source(manifest(tmp_path, rows))


@pytest.mark.parametrize(("one", "other"), [("1", "1.0"), ("Malignant", "malignant"), ("normal benign", "normal  benign"),
                                            ("benign", "Benign ")])
def test_one_label_spelt_two_ways(tmp_path, one, other):
    names = images(tmp_path, 12)
    rows = [f"{n},{one if i < 6 else 'x'}" for i, n in enumerate(names)] + [f"{names[11]}x,{other}"]
    Image.open(tmp_path / names[11]).save(tmp_path / f"{names[11]}x.png")
    rows[-1] = f"{names[11]}x.png,{other}"
    with pytest.raises(DataError, match=rf"{one.strip()!r} \(line 2\) and {other.strip()!r} \(line 14\) differ only"):
        read_source(manifest(tmp_path, rows))


def test_distinct_numbers_stay_distinct(tmp_path):
    names = images(tmp_path, 12)
    data = read_source(manifest(tmp_path, [f"{n},{'2' if i % 2 else '10'}" for i, n in enumerate(names)]))
    assert data.class_names == ["2", "10"]


def test_class_folders_spelt_two_ways(tmp_path):
    images(tmp_path / "Malignant", 6)
    images(tmp_path / "malignant", 6, seed=1)
    images(tmp_path / "benign", 6, seed=2)
    with pytest.raises(DataError, match=r"'Malignant' \(folder .*Malignant\) and 'malignant' \(folder .*\) differ only"):
        read_source(tmp_path)


def test_a_path_that_names_a_folder(tmp_path):
    names = images(tmp_path, 12)
    (tmp_path / "sub").mkdir()
    rows = [f"{n},{'a' if i % 2 else 'b'}" for i, n in enumerate(names)] + ["sub,a"]
    with pytest.raises(DataError, match=r"line 14: 'sub' is a folder, not an image file"):
        read_source(manifest(tmp_path, rows))


def test_the_same_bytes_under_two_names_in_two_splits(tmp_path):
    names = images(tmp_path, 16)
    shutil.copy(tmp_path / names[0], tmp_path / "copy.png")
    rows = [f"{n},{'a' if i % 2 else 'b'},{'train' if i < 10 else 'val' if i < 13 else 'test'}"
            for i, n in enumerate(names)] + ["copy.png,b,test"]
    data = read_source(manifest(tmp_path, rows, "path,label,split"))
    with pytest.raises(DataError, match=r"00\.png and .*copy\.png are identical images, in the train and test splits"):
        make_split(data)


def test_the_same_bytes_twice_in_a_made_split(tmp_path):
    names = images(tmp_path, 16)
    shutil.copy(tmp_path / names[1], tmp_path / "again.png")
    rows = [f"{n},{'a' if i % 2 else 'b'}" for i, n in enumerate(names)] + ["again.png,a"]
    with pytest.raises(DataError, match=r"01\.png and .*again\.png are identical images"):
        make_split(read_source(manifest(tmp_path, rows)))


def test_a_patient_in_two_given_splits(tmp_path):
    names = images(tmp_path, 16)
    rows = [f"{n},{'a' if i % 2 else 'b'},{'train' if i < 10 else 'val' if i < 13 else 'test'},p{i}"
            for i, n in enumerate(names)]
    rows[-1] = rows[-1].rsplit(",", 1)[0] + ",p0"  # the last test image belongs to the first training patient
    data = read_source(manifest(tmp_path, rows, "path,label,split,patient_id"))
    with pytest.raises(DataError, match=r"patient 'p0' is in the train split \(.*00\.png\) and the test split"):
        make_split(data)


def _npz(path: Path, labels: dict) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in (("train", 12), ("val", 4), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels.get(split, (np.arange(k) % 2).reshape(k, 1))
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("labels", "needle"), [
    ({"val": np.zeros((3, 1), int)}, "val holds 4 images but 3 labels"),
    ({"test": np.array([[0], [1], [5], [0], [1], [0]])}, r"test_labels\[2\] holds label 5, outside the dataset's classes \(0 to 1\)"),
    ({"train": -(np.arange(12) % 2).reshape(12, 1)}, r"train_labels\[1\] holds label -1"),
    ({"val": np.array([[0.0], [np.nan], [1.0], [0.0]])}, r"val_labels\[1\] is \[nan\], not a whole number"),
])
def test_medmnist_labels_that_do_not_fit(tmp_path, labels, needle):
    with pytest.raises(DataError, match=needle):
        read_source(_npz(tmp_path / "breastmnist.npz", labels))


def test_an_official_split_keeps_its_repeated_image_as_a_notice(tmp_path):
    path = _npz(tmp_path / "breastmnist.npz", {})
    with np.load(path) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["test_images"][0] = arrays["train_images"][3]  # as BreastMNIST's own file does once
    np.savez(path, **arrays)
    data = read_source(path)
    split = make_split(data)
    assert split.given and len(data.notices) == 1
    assert "breastmnist.npz[train][3] and breastmnist.npz[test][0] are identical images" in data.notices[0]


def test_mask_values_with_gaps_and_empty_masks(tmp_path):
    root = write_mask_folder(tmp_path / "m", n=12, size=32)
    mask = np.asarray(Image.open(root / "masks" / "case_003.png"))
    Image.fromarray(np.where(mask > 0, 7, 0).astype(np.uint8)).save(root / "masks" / "case_003.png")
    for p in (root / "masks").iterdir():  # 0/1 masks, one of them with a 7
        m = np.asarray(Image.open(p))
        Image.fromarray(np.where(m == 255, 1, m).astype(np.uint8)).save(p)
    with pytest.raises(DataError, match=r"case_003\.png: mask value 7 leaves class indices 2, 3, 4, 5, 6 unused"):
        get_task("segmentation").inputs.read(str(root))
    for p in (root / "masks").iterdir():
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(p)
    with pytest.raises(DataError, match="hold no foreground at all"):
        get_task("segmentation").inputs.read(str(root))


def test_through_the_command_line_exit_2_and_nothing_written(tmp_path, capsys):
    data = tmp_path / "data"
    names = images(data, 12)
    rows = [f"{n},{'a' if i % 2 else 'b'}" for i, n in enumerate(names)]
    csv = manifest(data, rows + rows[:3])
    for command in (["train", "--data", csv, "--out", tmp_path / "r"], ["study", "--data", csv, "--out", tmp_path / "s"]):
        code, _, err = run_cli([*command, "--quiet"], capsys)
        assert code == 2 and "listed twice" in " ".join(err.split()) and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
