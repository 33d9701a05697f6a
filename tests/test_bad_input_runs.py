"""Runs that go wrong say so: a study whose trials fail, labels that cannot be scored, data that changed under a
finished study, output without a terminal, and inputs that are converted or skipped. Each case is a tiny real run on
generated images; an error ends with exit code 2 and one line naming the culprit, a notice is printed once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from generated import run_cli, shape_image, snapshot, user_error, write_shape_folder
from PIL import Image

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]
ONE_TRIAL = ["--fractions", "1", "--seeds", "1", "--device", "cpu", "--executor", "local", *QUICK]
SRC = Path(__file__).resolve().parents[1] / "src"






def page_text(path: Path) -> str:
    import html
    import re

    page = re.sub(r"<style>.*?</style>", "", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def shapes(tmp_path) -> Path:
    return write_shape_folder(tmp_path / "shapes", n_per_class=12)


# -- 4. a study whose trials fail -----------------------------------------------------------------------------------
def test_a_study_whose_every_trial_fails_says_so_and_reports_what_failed(shapes, tmp_path, capsys):
    study = tmp_path / "study"
    code, out, err = run_cli(["study", "--data", shapes, "--out", study, "--strategies", "full", "--lr", "1e30",
                              *ONE_TRIAL], capsys)
    text = user_error((code, out, err), "no trial finished", "the 1 trial", "full · 100% · seed 0",
                      "non-finite in epoch 1", "report.html", "--new-folder")
    assert "✓" not in out and "Traceback" not in out
    assert "✗ full · 100% · seed 0: failed: the training loss became non-finite" in " ".join(out.split())
    page = page_text(study / "report.html")
    assert "No trial finished: 1 trial(s) failed It is the trial the study recorded" in page
    assert "non-finite in epoch 1" in page
    assert "0 strategies" not in page and "did not train from scratch" not in page
    assert "1 strategy × 1 training-set size × 1 seed planned" in page
    assert not (study / ".staged-models").exists() and not (study / "models").exists()
    before = snapshot(study)
    code, out, err = run_cli(["report", study], capsys)  # the report command says the same, and changes nothing else
    assert user_error((code, out, err), "no trial finished") == text
    assert "report.html" in out
    after = snapshot(study)
    assert after.keys() == before.keys()
    assert all(after[k] == before[k] for k in before if k != "report.html")


def test_a_study_where_some_trials_fail_marks_them_and_goes_on(shapes, tmp_path, capsys):
    # the backbone's layers train at a learning rate that diverges, the classifier at 1e30 x 1e-33 = 1e-3: 'full'
    # fails and 'linear' (the classifier alone) finishes
    config = tmp_path / "study.yaml"
    config.write_text("train:\n  lr: 1.0e+30\n  head_lr_multiplier: 1.0e-33\n")
    study = tmp_path / "study"
    args = [a for a in ONE_TRIAL if a != "--quiet"]  # progress on, but no terminal: a plain line per trial
    code, out, err = run_cli(["study", "--config", config, "--data", shapes, "--out", study, "--strategies",
                              "linear,full", *args], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("✓ linear · 100% · seed 0: test AUC") and line.endswith(" s") for line in lines), out
    assert any(line.startswith("✗ full · 100% · seed 0: failed: the training loss became non-finite in epoch 1")
               and line.endswith("extreme values.") for line in lines), out
    assert "✓ full" not in out and "Recommended: linear" in " ".join(lines) and "1 trial(s) failed" in out
    assert "epoch 1/1" not in out + err and "━" not in err  # no epoch lines, no bars
    page = page_text(study / "report.html")
    assert "1 trial(s) failed and are left out of every number above" in page and "non-finite in epoch 1" in page


# -- 11 (b). a finished study whose data changed ----------------------------------------------------------------------
def test_a_finished_study_rerun_on_changed_data_is_refused_then_written_beside(shapes, tmp_path, capsys):
    study = tmp_path / "study"
    args = ["study", "--data", shapes, "--out", study, "--strategies", "linear", *ONE_TRIAL]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    code, out, err = run_cli(args, capsys)  # unchanged data: the finished study prints its table again
    assert code == 0 and "1 already done" in " ".join(out.split()), err
    before = snapshot(study)
    rng = np.random.default_rng(9)
    for i in range(3):
        Image.fromarray(shape_image("disk", rng)).save(shapes / "disk" / f"new_{i}.png")
    user_error(run_cli(args, capsys), "the data changed", "3 added", "--new-folder")
    assert snapshot(study) == before
    code, out, err = run_cli([*args, "--new-folder"], capsys)
    assert code == 0, err
    assert "starting a new study in" in " ".join(out.split()) and snapshot(study) == before
    with sqlite3.connect(tmp_path / "study-2" / "study.sqlite") as con:  # the new study ran its whole plan
        assert con.execute("SELECT strategy, status FROM trials").fetchall() == [("linear", "done")]


# -- 11 (a). multi-label targets ----------------------------------------------------------------------------------------
def write_multilabel_npz(path: Path, labels=None, constant: tuple[str, int, int] | None = None) -> Path:
    """A MedMNIST-like ``.npz`` of random 28 px images with 3 label columns of random 0/1 (every label varying in
    every split), ``labels`` everywhere instead when given, or ``constant = (split, column, value)``."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        t = np.tile(np.array([[0, 1, 0], [1, 0, 1]], dtype=np.uint8), (n // 2, 1))
        if labels is not None:
            t[:] = labels
        if constant is not None and constant[0] == split:
            t[:, constant[1]] = constant[2]
        arrays[f"{split}_labels"] = t
    np.savez(path, **arrays)
    return path


def test_multilabel_labels_that_vary_in_every_split_pass_the_audit(tmp_path):
    from medtransfer import RunConfig
    from medtransfer.engine import prepare_data

    prepared = prepare_data(RunConfig(data=str(write_multilabel_npz(tmp_path / "ml.npz"))))
    assert prepared.data.label_kind == "multilabel" and prepared.split.counts() == {"train": 30, "val": 10, "test": 10}


def test_multilabel_targets_other_than_0_and_1_are_refused(tmp_path, capsys):
    data = write_multilabel_npz(tmp_path / "labels7.npz", labels=7)
    out = tmp_path / "run"
    user_error(run_cli(["train", "--data", data, "--strategy", "linear", "--out", out, *QUICK], capsys),
               str(data), "train_labels[0]", "holds 7", "0 (absent) or 1 (present)")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["labels7.npz"]


@pytest.mark.parametrize("split, value, where, why", [
    ("train", 0, "training", "cannot learn it"), ("train", 1, "training", "cannot learn it"),
    ("val", 1, "validation", "AUC cannot be computed"), ("test", 0, "test", "AUC cannot be computed")])
def test_a_multilabel_label_constant_over_a_split_is_refused(split, value, where, why, tmp_path, capsys):
    data = write_multilabel_npz(tmp_path / "ml.npz", constant=(split, 1, value))
    out = tmp_path / "run"
    user_error(run_cli(["train", "--data", data, "--strategy", "linear", "--out", out, *QUICK], capsys),
               f"label 'label_1' is {value} in all", f"of the given {where} split", why)
    assert not out.exists()


# -- 12. output to a file or a pipe --------------------------------------------------------------------------------------
def test_train_without_a_terminal_prints_a_line_per_epoch_as_it_goes(shapes, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "medtransfer.cli", "train", "--data", str(shapes), "--out", str(out),
                             "--strategy", "linear", "--input-size", "32", "--epochs", "3", "--batch-size", "8",
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)})
    first = proc.stderr.readline()  # the first epoch's line comes while the run goes on, not when it ends
    running = proc.poll() is None
    rest, _ = proc.stderr.read(), proc.wait(timeout=600)
    assert proc.returncode == 0, first + rest
    assert first.startswith("epoch 1/3 loss ") and " val AUC " in first and running, first + rest
    epochs = [line for line in (first + rest).splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"] and "━" not in rest
    assert "best epoch" in proc.stdout.read()


# -- 12. inputs skipped or converted, and a study without its models ---------------------------------------------------
def add_gifs(folder: Path) -> None:
    """An animated GIF (two frames) in disk/, a still one in square/."""
    frames = [Image.fromarray(np.full((32, 32), v, np.uint8)) for v in (10, 200)]
    frames[0].save(folder / "disk" / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(folder / "square" / "still.gif")


@pytest.fixture(scope="module")
def gif_study(tmp_path_factory):
    """A finished one-trial study of gray images whose class folders also hold GIF files; (folder, stdout)."""
    root = tmp_path_factory.mktemp("gif_study")
    data = write_shape_folder(root / "shapes", n_per_class=12)
    add_gifs(data)
    study = root / "study"
    old, sys.argv = sys.argv, ["medtransfer", "study", "--data", str(data), "--out", str(study), "--strategies", "linear",
                               *ONE_TRIAL]
    from contextlib import redirect_stdout
    from io import StringIO

    from medtransfer.cli import main

    buf = StringIO()
    try:
        with redirect_stdout(buf):
            main()
    except SystemExit as e:
        assert not e.code, buf.getvalue()
    finally:
        sys.argv = old
    return study, buf.getvalue()


NOTICE = "2 image file(s) in a format medtransfer does not read (GIF) were skipped: disk/anim.gif, square/still.gif."


def test_gif_files_in_class_folders_are_skipped_with_one_notice(gif_study):
    study, out = gif_study
    assert " ".join(out.split()).count(NOTICE) == 1, out
    with sqlite3.connect(study / "study.sqlite") as con:
        card = json.loads(con.execute("SELECT value FROM meta WHERE key = 'data'").fetchone()[0])
    assert sum(card["counts"][k] for k in ("train", "val", "test")) == 24 and card["notices"] == [
        NOTICE + " An animated GIF holds several frames; convert each file to PNG (one frame) to use it."]


def test_train_says_which_gif_files_it_skipped_and_a_folder_of_gifs_only_is_refused(shapes, tmp_path, capsys):
    add_gifs(shapes)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", shapes, "--strategy", "tune:99", "--out", out, *QUICK], capsys)
    assert code == 2 and " ".join(err.split()).count(NOTICE) == 1 and "tune:99" in err, err
    for f in (shapes / "square").glob("*.png"):
        f.unlink()
    user_error(run_cli(["train", "--data", shapes, "--strategy", "linear", "--out", out, *QUICK], capsys),
               f"{shapes / 'square'}: class folder holds no images", "It holds 1 GIF file(s), which are not read")
    assert not out.exists()


def test_predict_on_a_study_whose_models_folder_is_gone_says_so(gif_study, tmp_path, capsys):
    import shutil

    from medtransfer.study.store import StudyStore

    study = Path(shutil.copytree(gif_study[0], tmp_path / "study"))
    shutil.rmtree(study / "models")
    images, out = study.parent / "new", tmp_path / "predictions"
    images.mkdir()
    Image.fromarray(shape_image("disk", np.random.default_rng(1))).save(images / "a.png")
    for extra in ([], ["--strategy", "linear"]):
        text = user_error(run_cli(["predict", study, images, "--out", out, "--quiet", *extra], capsys),
                          f"{study / 'models'} is missing (moved or deleted)", "Restore that folder")
        assert "--checkpoints none" not in text and not out.exists()
    store = StudyStore(study)  # a study that kept no model is told apart
    store.set_config({**store.config(), "checkpoints": "none"}, store.meta()["config_hash"])
    user_error(run_cli(["predict", study, images, "--out", out, "--quiet"], capsys), "ran with --checkpoints none")


def test_colour_images_given_to_a_gray_model_are_converted_with_one_notice(gif_study, tmp_path, capsys):
    images = tmp_path / "new"
    images.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        gray = shape_image("disk", rng)
        Image.fromarray(np.stack([gray, gray // 2, gray // 3], axis=-1)).save(images / f"colour_{i}.png")
    Image.fromarray(shape_image("square", rng)).save(images / "gray.png")
    code, out, err = run_cli(["predict", gif_study[0], images, "--out", tmp_path / "p", "--quiet"], capsys)
    assert code == 0, err
    assert "4 images predicted" in " ".join(out.split())
    assert " ".join(err.split()) == ("3 colour image(s) were converted to gray (ITU-R 601-2 luma) for this model, "
                                     "which was trained on gray images.")
