"""``predict`` on new images: the same probabilities and masks as the run's test predictions, and every bad input
named in errors.csv or refused with one line."""

import csv
import json
import shutil

import numpy as np
import pytest
from generated import gray_dicom, run_cli
from PIL import Image

from medtransfer import RunConfig, TrainConfig, evaluate, train
from medtransfer.delivery.model_folder import saved_model_folder as model_folder
from medtransfer.delivery.predict import predict
from medtransfer.errors import DataError
from medtransfer.metrics.masks import dice_per_image
from medtransfer.tasks import read_data

FAST = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


@pytest.fixture(scope="module")
def classifier(shape_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("classifier") / "run"
    train(RunConfig(data=str(shape_folder), strategy="tune:2", input_size=32, train=FAST), out)
    return out


@pytest.fixture(scope="module")
def segmenter(blob_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("segmenter") / "run"
    # 32 px input for 64 px images: the run scores its test masks at the images' own size, as predict writes them
    train(RunConfig(data=str(blob_folder), strategy="tune:3", input_size=32, task="segmentation", train=FAST,
                    task_options={"decoder": "fpn"}), out)
    return out


def _rows(path):
    return list(csv.DictReader(open(path, newline="")))


def test_predicted_probabilities_equal_the_runs_test_probabilities(classifier, shape_folder, tmp_path, capsys):
    _task, data = read_data(str(shape_folder))
    stored = _rows(classifier / "test_predictions.csv")
    listing = tmp_path / "test.csv"
    listing.write_text("path\n" + "".join(f"{data.samples[int(r['sample'])].ref}\n" for r in stored))
    code, out, _err = run_cli(["predict", classifier, listing, "--out", tmp_path / "p", "--quiet"], capsys)
    assert code == 0, out
    rows = _rows(tmp_path / "p" / "predictions.csv")
    assert [r["path"] for r in rows] == [data.samples[int(r["sample"])].ref for r in stored]
    for name in ("p_disk", "p_square"):
        np.testing.assert_allclose([float(r[name]) for r in rows], [float(r[name]) for r in stored], atol=1e-5)
    assert all(r["predicted"] == ("disk" if float(r["p_disk"]) >= 0.5 else "square") for r in rows)
    assert not (tmp_path / "p" / "errors.csv").exists()


def test_a_folder_with_heatmaps_and_an_unreadable_file(classifier, shape_folder, tmp_path, capsys):
    images = tmp_path / "new"
    shutil.copytree(shape_folder / "disk", images / "a")
    Image.open(shape_folder / "square" / "square_000.png").convert("RGB").save(images / "a" / "colour.png")
    (images / "broken.png").write_bytes(b"not a png")
    (images / "notes.txt").write_text("not an image")  # another file type: skipped
    code, out, _err = run_cli(["predict", classifier, images, "--out", tmp_path / "p", "--heatmaps", "--quiet"],
                              capsys)
    assert code == 0 and "1 files could not be read" in out
    rows = _rows(tmp_path / "p" / "predictions.csv")
    assert len(rows) == 31 and not any("broken" in r["path"] or "notes" in r["path"] for r in rows)
    errors = _rows(tmp_path / "p" / "errors.csv")
    assert [e["path"] for e in errors] == [str(images / "broken.png")] and "not a readable image" in errors[0]["reason"]
    heat = sorted((tmp_path / "p" / "heatmaps").glob("*.png"))
    assert len(heat) == 31 and Image.open(heat[0]).size == (40, 40)


def test_dicom_header_values_never_reach_the_outputs(classifier, tmp_path, capsys):
    rng = np.random.default_rng(0)
    ds = gray_dicom(40, 40, rng.integers(0, 4000, (40, 40)), PatientName="Doe^Jane", PatientID="MRN-123456")
    folder = tmp_path / "dicom"
    folder.mkdir()
    ds.save_as(folder / "IM0001", enforce_file_format=True)
    code, _out, _err = run_cli(["predict", classifier, folder, "--out", tmp_path / "p", "--quiet"], capsys)
    assert code == 0
    text = (tmp_path / "p" / "predictions.csv").read_text()
    assert "IM0001" in text and "Doe" not in text and "MRN-123456" not in text


def test_masks_at_the_images_own_size_match_the_runs_test_dice(segmenter, blob_folder, tmp_path):
    _task, data = read_data(str(blob_folder), task="segmentation")
    stored = _rows(segmenter / "test_predictions.csv")
    listing = tmp_path / "test.csv"
    listing.write_text("image\n" + "".join(f"{data.samples[int(r['sample'])].ref}\n" for r in stored))
    result = predict(segmenter, listing, tmp_path / "p")
    assert result.predicted == len(stored)
    areas = _rows(tmp_path / "p" / "areas.csv")
    masks = np.stack([np.asarray(Image.open(tmp_path / "p" / a["mask"])) for a in areas])
    assert masks.shape[1:] == (64, 64) and set(np.unique(masks)) <= {0, 255}
    truth = np.stack([data.samples[int(r["sample"])].load_mask() for r in stored])
    dice = dice_per_image(masks // 255, (truth > 0).astype(np.uint8), 2).mean()
    run_dice = json.loads((segmenter / "metrics.json").read_text())["test"]["dice"]["value"]
    assert dice == pytest.approx(run_dice, abs=1e-9)
    per_image = [float(r["dice_" + data.class_names[1]]) for r in stored]
    np.testing.assert_allclose(dice_per_image(list(masks // 255), list((truth > 0).astype(np.uint8)), 2)[:, 0],
                               per_image, atol=1e-6)
    assert evaluate(segmenter, blob_folder)["metrics"]["dice"]["value"] == pytest.approx(run_dice)
    assert [int(a["area_px_" + data.class_names[1]]) for a in areas] == [int((m > 0).sum()) for m in masks]


def test_segmentation_masks_follow_each_images_size(segmenter, tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (50, 90, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    predict(segmenter, tmp_path / "wide.png", tmp_path / "p")
    assert Image.open(tmp_path / "p" / "masks" / "wide.png").size == (90, 50)
    with pytest.raises(Exception, match="--heatmaps is for classification"):
        predict(segmenter, tmp_path / "wide.png", tmp_path / "p2", heatmaps=True)



def test_a_nifti_volume_is_predicted_slice_by_slice_into_a_label_volume(segmenter, classifier, blob_folder, tmp_path):
    """A volume whose slices are gray test images: its label volume's slices are the masks the same slices get as
    PNG files, in the input's geometry; a classifier lists the volume in errors.csv."""
    import nibabel as nib

    _task, data = read_data(str(blob_folder), task="segmentation")
    slices = [np.asarray(Image.fromarray(data.samples[i].load_image()).convert("L")) for i in range(3)]
    volume = np.stack(slices, axis=2).astype(np.float32)
    volume[0, 0, 0], volume[0, 1, 0] = 0, 255  # min–max 0…255: the volume's scaling keeps the gray values
    (tmp_path / "png").mkdir()
    for i in range(3):
        Image.fromarray(volume[:, :, i].astype(np.uint8)).save(tmp_path / "png" / f"slice{i}.png")
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "ct.nii.gz"))

    predict(segmenter, tmp_path / "png", tmp_path / "p2d")
    result = predict(segmenter, tmp_path / "ct.nii.gz", tmp_path / "p3d")
    assert result.predicted == 3 and not result.errors
    written = nib.load(str(tmp_path / "p3d" / "masks" / "ct.nii.gz"))
    labels = np.asarray(written.dataobj)
    assert labels.shape == volume.shape and np.allclose(written.affine, affine)
    for i in range(3):
        flat = np.asarray(Image.open(tmp_path / "p2d" / "masks" / f"slice{i}.png")) // 255
        np.testing.assert_array_equal(labels[:, :, i], flat)
    row = _rows(tmp_path / "p3d" / "areas.csv")[0]
    fg = data.class_names[1]
    assert (row["slices"], float(row["voxel_mm3"])) == ("3", 0.5)
    assert int(row[f"area_px_{fg}"]) == int((labels == 1).sum())

    with pytest.raises(DataError, match="none of the 1 images"):
        predict(classifier, tmp_path / "ct.nii.gz", tmp_path / "pc")
    assert "only segmentation models predict volumes" in _rows(tmp_path / "pc" / "errors.csv")[0]["reason"]


def test_bad_inputs_and_bad_model_folders_are_refused_with_one_line(classifier, tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"\x89PNG truncated")
    (tmp_path / "bad" / "b.jpg").write_bytes(b"")
    code, _out, err = run_cli(["predict", classifier, tmp_path / "bad", "--out", tmp_path / "p", "--quiet"], capsys)
    assert code == 2 and "none of the 2 images could be read" in err and "Traceback" not in err
    assert len(_rows(tmp_path / "p" / "errors.csv")) == 2
    for args, message in (
        ([tmp_path / "missing"], "no such file or folder"),
        ([tmp_path / "p"], "holds no image files"),
    ):
        code, _out, err = run_cli(["predict", classifier, *args, "--out", tmp_path / "q", "--quiet"], capsys)
        assert code == 2 and message in err, err
    # a model folder that is incomplete or edited
    broken = tmp_path / "model"
    shutil.copytree(classifier, broken)
    spec = json.loads((broken / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**spec, "complete": False}))
    code, _out, err = run_cli(["predict", broken, tmp_path / "bad", "--out", tmp_path / "q", "--quiet"], capsys)
    assert code == 2 and "did not finish" in err
    (broken / "model.json").write_text(json.dumps({**spec, "class_names": ["a", "b", "c"]}))
    code, _out, err = run_cli(["predict", broken, tmp_path / "bad", "--out", tmp_path / "q", "--quiet"], capsys)
    assert code == 2 and "do not fit" in err
    (broken / "model.json").unlink()
    code, _out, err = run_cli(["predict", broken, tmp_path / "bad", "--out", tmp_path / "q", "--quiet"], capsys)
    assert code == 2 and "model.json: missing" in err
    code, _out, err = run_cli(["predict", tmp_path / "bad", tmp_path / "bad", "--out", tmp_path / "q"], capsys)
    assert code == 2 and "neither a run folder" in err


def test_a_study_folder_gives_its_recommended_model_or_the_strategy_asked_for(classifier, tmp_path):
    study = tmp_path / "study"
    (study / "models").mkdir(parents=True)
    (study / "study.sqlite").write_bytes(b"")
    shutil.copytree(classifier, study / "models" / "tune-2")
    with pytest.raises(DataError, match="no recommended model yet"):
        model_folder(study)
    (study / "summary.json").write_text(json.dumps({"recommended": "tune:2"}))
    assert model_folder(study) == study / "models" / "tune-2"
    assert model_folder(study, "tune:2") == study / "models" / "tune-2"
    with pytest.raises(DataError, match="no saved model of strategy 'full'.*saved: tune-2"):
        model_folder(study, "full")
