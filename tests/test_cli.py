"""The command line: results on success; one line and exit code 2 for every user error, never a traceback."""

import json

import numpy as np
import pytest
from generated import run_cli, shape_image, write_shape_folder
from PIL import Image

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]


def _csv(tmp_path, rows, header="path,label"):
    rng = np.random.default_rng(0)
    for r in rows:
        name = r.split(",")[0]
        if not name.startswith("missing"):
            Image.fromarray(shape_image("disk", rng)).save(tmp_path / name)
    p = tmp_path / "manifest.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def _assert_user_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    text = " ".join(err.split())  # rich may wrap long lines
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"


def test_train_then_evaluate(shape_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--data", shape_folder, "--strategy", "tune:2", "--out", out, *QUICK], capsys)
    assert code == 0, err
    assert "auc" in stdout and (out / "model.safetensors").is_file()
    code, stdout, err = run_cli(["evaluate", out, "--data", shape_folder, "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["n"] == 12


def test_backbones_show_lists_groups_and_valid_k(capsys):
    code, stdout, _ = run_cli(["backbones", "show", "tf_efficientnet_lite0"], capsys)
    assert code == 0
    assert "blocks.5" in stdout and "1 ≤ K ≤ 7" in stdout


def test_missing_image(tmp_path, capsys):
    csv = _csv(tmp_path, ["a.png,x", "missing.png,y", "b.png,y"])
    code, _, err = run_cli(["train", "--data", csv, "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "manifest.csv", "line 3", "missing.png")


def test_unreadable_image(tmp_path, capsys):
    folder = write_shape_folder(tmp_path / "d", n_per_class=6)
    (folder / "disk" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = run_cli(["train", "--data", folder, "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "broken.png")


def test_csv_without_label_column(tmp_path, capsys):
    csv = _csv(tmp_path, ["a.png,x", "b.png,y"], header="path,diagnosis")
    code, _, err = run_cli(["train", "--data", csv, "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "manifest.csv", "'label'", "diagnosis", "--label-column")


def test_label_only_in_test(tmp_path, capsys):
    rows = [f"t{i}.png,{'ab'[i % 2]},train" for i in range(10)] + [f"v{i}.png,{'ab'[i % 2]},val" for i in range(4)]
    rows += [f"s{i}.png,c,test" for i in range(3)]
    csv = _csv(tmp_path, rows, header="path,label,split")
    code, _, err = run_cli(["train", "--data", csv, "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "'c' appears only in the test split")


def test_class_without_training_example(tmp_path, capsys):
    rows = [f"t{i}.png,a,train" for i in range(10)] + [f"v{i}.png,{'ab'[i % 2]},val" for i in range(4)]
    rows += [f"s{i}.png,{'ab'[i % 2]},test" for i in range(4)]
    csv = _csv(tmp_path, rows, header="path,label,split")
    code, _, err = run_cli(["train", "--data", csv, "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "class 'b' has no training example")


def test_unknown_backbone_suggests(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", shape_folder, "--backbone", "resnet180", "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, "unknown backbone 'resnet180'", "did you mean")


@pytest.mark.parametrize("k", ["0", "8"])
def test_k_out_of_range(shape_folder, tmp_path, capsys, k):
    code, _, err = run_cli(["train", "--data", shape_folder, "--strategy", f"tune:{k}", "--out", tmp_path / "r", *QUICK], capsys)
    _assert_user_error(code, err, f"tune:{k}", "between 1 and 7")


def test_diverging_run_exits_2_and_says_which_epoch(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", shape_folder, "--strategy", "full", "--lr", "1e30",
                            "--out", tmp_path / "r", "--input-size", "32", "--epochs", "3", "--batch-size", "8", "--quiet"], capsys)
    _assert_user_error(code, err, "non-finite in epoch", "--lr")


def test_study_seed_count_of_zero_says_how_to_run_seed_zero(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["study", "--data", shape_folder, "--seeds", "0", "--out", tmp_path / "s", *QUICK], capsys)
    _assert_user_error(code, err, "--seeds 0", "at least 1", "--seeds 1")


def test_task_options_on_the_command_line(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", shape_folder, "--task-option", "decoder=fpn", "--out", tmp_path / "a",
                            *QUICK], capsys)
    _assert_user_error(code, err, "The 'task_options' parameter of the classification task must be one of its options (calibration)", "Got 'decoder'")
    code, _, err = run_cli(["study", "--data", shape_folder, "--task", "segmentation", "--task-option", "decoder=fnp",
                            "--out", tmp_path / "b"], capsys)
    _assert_user_error(code, err, "The 'decoder' parameter of the segmentation task options must be one of unet, fpn")
    code, _, err = run_cli(["train", "--data", shape_folder, "--task-option", "decoder", "--out", tmp_path / "c"], capsys)
    _assert_user_error(code, err, "--task-option 'decoder': give KEY=VALUE")
