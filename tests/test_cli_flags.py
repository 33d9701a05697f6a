"""The flags made from the table of settings: the study takes the training flags train takes, NIfTI volumes are
sliced along --axis, every flag that cannot be read is reported at once, and checking settings changes nothing."""

from __future__ import annotations

import json

import numpy as np
import typer
from generated import run_cli

from medtransfer.cli import app
from medtransfer.study import StudyConfig
from medtransfer.study.store import StudyStore

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]


def _user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2 and "Traceback" not in err, err
    text = " ".join(err.split())  # rich may wrap long lines
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"


def test_study_takes_the_training_flags_of_train(shape_folder, tmp_path, capsys):
    out = tmp_path / "s"
    code, _, err = run_cli(["study", "--data", shape_folder, "--out", out, "--strategies", "linear", "--fractions", "1",
                            "--seeds", "1", "--optimizer", "sgd", "--patience", "0", "--augment", "none", "--hflip",
                            "--executor", "local", *QUICK], capsys)
    assert code == 0, err
    stored = StudyStore(out).config()
    assert stored["train"]["optimizer"] == "sgd" and stored["train"]["patience"] is None
    assert stored["augmentation"] == "none+hflip"


def _volumes(root, n: int = 8, shape=(4, 32, 32)):
    import nibabel as nib

    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.normal(0, 20, shape).astype(np.float32)
        lab = np.zeros(shape, np.uint8)
        lab[:, 8:20, 10 + i:22 + i] = 1
        img[lab == 1] += 200
        for folder, data in (("images", img), ("labels", lab)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / folder / f"vol{i}.nii.gz"))
    return root


def test_nifti_volumes_are_sliced_along_the_axis_flag(tmp_path, capsys):
    data, out = _volumes(tmp_path / "ct"), tmp_path / "r"
    code, _, err = run_cli(["train", "--data", data, "--axis", "0", "--strategy", "linear", "--out", out, *QUICK],
                           capsys)
    assert code == 0, err
    assert json.loads((out / "model.json").read_text())["axis"] == 0
    code, _, err = run_cli(["train", "--data", data, "--axis", "3", "--out", tmp_path / "r3", *QUICK], capsys)
    _user_error(code, err, "--axis 3: choose 0, 1 or 2")
    assert not (tmp_path / "r3").exists()


def test_axis_on_a_folder_of_pngs_says_the_source_takes_no_axis(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", shape_folder, "--axis", "1", "--out", tmp_path / "r", *QUICK], capsys)
    _user_error(code, err, "does not take the option(s) axis")


def test_every_unreadable_flag_at_once(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["study", "--data", shape_folder, "--window", "40", "--axis", "5", "--task-option",
                            "decoder", "--fractions", "1,half", "--out", tmp_path / "s"], capsys)
    _user_error(code, err, "4 problems:", "--window '40': give CENTRE,WIDTH", "--axis 5: choose 0, 1 or 2",
                "--task-option 'decoder': give KEY=VALUE", "--fractions '1,half': give a comma-separated list")
    assert not (tmp_path / "s").exists()


def test_predict_runs_on_the_device_auto_picks():
    predict = typer.main.get_command(app).commands["predict"]
    assert next(p for p in predict.params if p.name == "device").default == "auto"


def test_checking_settings_changes_nothing():
    config = StudyConfig(data="d")
    config.seeds, config.strategies, config.fractions, config.track = 2, ["tune:02"], [0.5, 1], "tensorboard"
    assert config.problems() == []
    assert (config.seeds, config.strategies, config.fractions, config.track) == (2, ["tune:02"], [0.5, 1], "tensorboard")
    made = StudyConfig(data="d", seeds=2, strategies=["tune:02"], fractions=[0.5, 1], track="tensorboard")
    assert (made.seeds, made.strategies, made.fractions, made.track) == ([0, 1], ["tune:2"], [1.0, 0.5], ["tensorboard"])
