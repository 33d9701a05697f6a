"""Bad input never becomes a wrong answer: every case ends with exit code 2 and one line naming the culprit, leaves
no half-written folder, and changes nothing that was there. (The audits of the sources' contents are in
tests/data/test_audits.py.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from generated import run_cli, shape_image, snapshot, user_error, write_shape_folder
from PIL import Image

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]
STUDY = ["--strategies", "linear,full", "--fractions", "1", "--seeds", "1", "--device", "cpu", *QUICK]






@pytest.fixture
def shapes(tmp_path) -> Path:
    return write_shape_folder(tmp_path / "shapes", n_per_class=15)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, shape_folder) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    from medtransfer.cli import main  # noqa: F401  (the command line is what is tested)
    import sys

    old, sys.argv = sys.argv, ["medtransfer", "train", "--data", str(shape_folder), "--strategy", "linear",
                               "--out", str(out), *QUICK]
    try:
        main()
    except SystemExit as e:
        assert not e.code
    finally:
        sys.argv = old
    return out


# -- 1. changed data on resume ----------------------------------------------------------------------------------
def test_resume_on_changed_data_is_refused_then_written_beside(shapes, tmp_path, capsys):
    study = tmp_path / "study"
    code, _, err = run_cli(["study", "--data", shapes, "--out", study, *STUDY], capsys)
    assert code == 0, err
    with sqlite3.connect(study / "study.sqlite") as con:  # as if killed after its first trial
        con.execute("DELETE FROM trials WHERE strategy = 'full'")
    before = snapshot(study)
    rng = np.random.default_rng(9)
    for i in range(3):
        Image.fromarray(shape_image("disk", rng)).save(shapes / "disk" / f"new_{i}.png")
    user_error(run_cli(["study", "--data", shapes, "--out", study, *STUDY], capsys),
               "the data changed", "3 added", "--new-folder")
    assert snapshot(study) == before  # nothing written
    code, out, err = run_cli(["study", "--data", shapes, "--out", study, "--new-folder", *STUDY], capsys)
    assert code == 0, err
    assert (tmp_path / "study-2" / "report.html").is_file() and snapshot(study) == before
    code, _, err = run_cli(["report", study], capsys)  # the old folder still reports what it has
    assert code == 0, err


# -- 2, 3. atomic run folders --------------------------------------------------------------------------------------
def test_an_existing_run_folder_is_refused_unless_overwrite(finished_run, shape_folder, tmp_path, capsys):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = snapshot(run)
    user_error(run_cli(["train", "--data", shape_folder, "--strategy", "full", "--out", run, *QUICK], capsys),
               "already exists", "--overwrite")
    assert snapshot(run) == before
    code, _, err = run_cli(["train", "--data", shape_folder, "--strategy", "full", "--out", run, "--overwrite",
                            *QUICK], capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["strategy"] == "full"
    assert json.loads((run / "model.json").read_text())["strategy"] == "full"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # no partial or replaced folder left


def test_a_checkpoint_of_an_unfinished_run_is_refused(finished_run, shape_folder, tmp_path, capsys):
    killed = Path(shutil.copytree(finished_run, tmp_path / "killed"))
    (killed / "metrics.json").unlink()  # what a run killed mid-training left before run folders were atomic
    spec = json.loads((killed / "model.json").read_text())
    spec.pop("complete")
    (killed / "model.json").write_text(json.dumps(spec))
    user_error(run_cli(["evaluate", killed, "--data", shape_folder], capsys), "did not finish")
    spec["complete"] = False  # a checkpoint saved during training
    (killed / "model.json").write_text(json.dumps(spec))
    user_error(run_cli(["evaluate", killed, "--data", shape_folder], capsys), "did not finish")


def test_a_failed_run_leaves_no_folder(shape_folder, tmp_path, capsys):
    out = tmp_path / "r"
    user_error(run_cli(["train", "--data", shape_folder, "--strategy", "full", "--lr", "1e30", "--out", out,
                        "--input-size", "32", "--epochs", "3", "--batch-size", "8", "--quiet"], capsys),
               "non-finite in epoch")
    user_error(run_cli(["train", "--data", shape_folder, "--strategy", "tune:99", "--out", out, *QUICK], capsys),
               "tune:99")
    user_error(run_cli(["train", "--data", shape_folder, "--lr", "inf", "--out", out, *QUICK], capsys), "'lr'")
    assert list(tmp_path.iterdir()) == []


# -- 5. a metric that cannot mean anything -------------------------------------------------------------------------
def test_a_given_test_split_without_a_class_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        kind = "disk" if i % 2 else "square"
        Image.fromarray(shape_image(kind, rng)).save(tmp_path / f"{i}.png")
        split = "train" if i < 16 else "val" if i < 20 else "test"
        label = "square" if split == "test" else kind  # the test split holds one class only
        rows.append(f"{i}.png,{label},{split}")
    (tmp_path / "m.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    user_error(run_cli(["train", "--data", tmp_path / "m.csv", "--out", tmp_path / "r", *QUICK], capsys),
               "test split has no images of 'disk'", "AUC cannot be computed")
    assert not (tmp_path / "r").exists()


# -- 6, 7. saved models that were edited or damaged ---------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "other_backbone", "other_classes", "missing_key"])
def test_an_edited_or_damaged_model_folder_is_refused(damage, finished_run, shape_folder, tmp_path, capsys):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    spec = json.loads((run / "model.json").read_text())
    if damage == "truncated":
        weights = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(weights[: len(weights) // 2])
        needle = "model.safetensors"
    elif damage == "other_backbone":
        spec["backbone"] = "resnet18"
        needle = "do not fit"
    elif damage == "other_classes":
        spec["class_names"] = ["a", "b", "c"]
        needle = "do not fit"
    else:
        del spec["strategy"]
        needle = "strategy"
    (run / "model.json").write_text(json.dumps(spec))
    user_error(run_cli(["evaluate", run, "--data", shape_folder], capsys), needle)


# -- config errors: named, and checked before anything is written ---------------------------------------------------
@pytest.mark.parametrize(("yaml_text", "needle"), [
    ("train: 5\n", "'train'"),
    ("input_size: 32.5\n", "'input_size'"),
    ("train: {epochs: '1'}\n", "'epochs'"),
    ("source_options: {colour: red}\n", "colour"),
])
def test_study_config_errors_leave_nothing_behind(yaml_text, needle, shape_folder, tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text(f"data: {shape_folder}\nstrategies: [linear]\nfractions: [1.0]\nseeds: [0]\n" + yaml_text)
    user_error(run_cli(["study", "--config", config, "--out", tmp_path / "s", "--quiet"], capsys), needle)
    assert not (tmp_path / "s").exists()


def test_output_inside_the_data_folder_is_refused(shapes, tmp_path, capsys):
    user_error(run_cli(["train", "--data", shapes, "--out", shapes / "run", *QUICK], capsys), "inside the data folder")
    user_error(run_cli(["study", "--data", shapes, "--out", shapes / "s", *STUDY], capsys), "inside the data folder")
    assert sorted(p.name for p in shapes.iterdir()) == ["disk", "square"]


def test_demo_on_missing_data_leaves_no_folder(tmp_path, capsys):
    user_error(run_cli(["demo", "--data", tmp_path / "nope.npz", "--out", tmp_path / "d", "--quiet"], capsys),
               "nope.npz")
    assert list(tmp_path.iterdir()) == []


class Payload:
    """Any Python object in a weights file: loading it would run code."""


def test_pickled_weights_are_refused_without_torch_advice(shape_folder, tmp_path, capsys):
    torch.save({"model": Payload()}, tmp_path / "w.pth")
    text = user_error(run_cli(["train", "--data", shape_folder, "--weights", tmp_path / "w.pth", "--out",
                               tmp_path / "r", *QUICK], capsys), "w.pth", "does not load")
    assert "weights_only" not in text and not (tmp_path / "r").exists()


def test_the_report_names_trials_tested_on_other_images(shapes, tmp_path, capsys):
    study = tmp_path / "study"
    code, _, err = run_cli(["study", "--data", shapes, "--out", study, *STUDY], capsys)
    assert code == 0, err
    with sqlite3.connect(study / "study.sqlite") as con:  # as a study resumed on changed data before fingerprints did
        samples = json.loads(con.execute("SELECT samples FROM cases WHERE trial_id = 'full|1|0'").fetchone()[0])
        con.execute("UPDATE cases SET samples = ? WHERE trial_id = 'full|1|0'", (json.dumps(samples[1:] + [999]),))
    code, out, err = run_cli(["report", study], capsys)
    assert code == 0, err
    html = (study / "report.html").read_text()
    assert "Trial full · 100% · seed 0 was tested on other images than the rest of the study" in html


def test_evaluate_on_a_folder_that_is_not_a_run(shape_folder, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.json").write_text("{not json")
    (tmp_path / "run" / "model.safetensors").write_bytes(b"")
    user_error(run_cli(["evaluate", tmp_path / "run", "--data", shape_folder], capsys), "model.json", "not valid JSON")
    user_error(run_cli(["evaluate", tmp_path / "nothing", "--data", shape_folder], capsys), "missing")
