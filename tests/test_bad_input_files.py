"""Bad files never hang, flood or half-write: config files that expand (YAML aliases) or are huge, named pipes among
the images, damaged model.json files, and outputs of predict and export that must be whole or absent. Each case ends
with exit code 2 and one message naming the culprit (or, for a pipe among the images, a run that skips it and says
so), with nothing left behind or changed."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from generated import run_cli, run_cli_subprocess, shape_image, user_error
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")




def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``, hidden ones included: a file by its bytes, anything else by its name."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def write_shapes(root: Path, n: int = 12, size: int = 32) -> Path:
    """``root/<disk|square>/<i>.png``: ``n`` generated ``size`` px images a class."""
    rng = np.random.default_rng(0)
    for kind in ("disk", "square"):
        (root / kind).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(shape_image(kind, rng, size)).save(root / kind / f"{kind}_{i:02d}.png")
    return root




@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "data")


@pytest.fixture(scope="module")
def model(shapes, tmp_path_factory) -> Path:
    """A finished run folder: a 1-epoch linear run on 32 px generated images."""
    from medtransfer.cli import main

    out = tmp_path_factory.mktemp("model") / "run"
    old, sys.argv = sys.argv, ["medtransfer", "train", "--data", str(shapes), "--strategy", "linear", "--out",
                               str(out), *QUICK]
    try:
        main()
    except SystemExit as e:
        assert not e.code
    finally:
        sys.argv = old
    return out


# -- 5. config files that expand or are huge ------------------------------------------------------------------------
def alias_tree(levels: int) -> str:
    """A few hundred bytes of YAML whose ``strategies`` expand to 9**levels names."""
    lines = ["strategies:", "  - &a0 [linear, linear, linear, linear, linear, linear, linear, linear, linear]"]
    lines += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_at_once(shapes, tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text(f"data: {shapes}\n" + alias_tree(7))
    assert config.stat().st_size < 500
    import medtransfer.cli  # noqa: F401  (imported before the clock starts: the read is what is timed)

    started = time.perf_counter()
    text = user_error(run_cli(["study", "--config", config, "--out", tmp_path / "s", "--quiet"], capsys),
                      "study.yaml line", "alias (*a0)")
    assert time.perf_counter() - started < 10 and len(text) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_an_alias_in_a_task_option_is_not_expanded(shapes, tmp_path, capsys):
    """A ``--task-option`` value is read as YAML too: with an alias it stays the text it was, and is refused short."""
    bomb = "[&a [x, x, x, x, x, x, x, x, x], [*a, *a, *a, *a, *a, *a, *a, *a, *a]]"
    text = user_error(run_cli(["train", "--data", shapes, "--out", tmp_path / "r", "--task-option",
                               f"calibration={bomb}", *QUICK], capsys), "'calibration'")
    assert len(text) < 400
    assert list(tmp_path.iterdir()) == []


def test_an_oversized_config_file_is_refused_before_it_is_read(shapes, tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text(f"data: {shapes}\n" + "# padding\n" * 120_000)  # 1.2 MB of comments
    user_error(run_cli(["study", "--config", config, "--out", tmp_path / "s", "--quiet"], capsys),
               "study.yaml", "too large for a config file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_long_and_many_bad_values_are_quoted_short(shapes, tmp_path, capsys):
    config = tmp_path / "study.yaml"
    names = [f"bogus{i}" for i in range(40)]
    config.write_text(f"data: {shapes}\nstrategies: [{'x' * 50_000}, {', '.join(names)}]\n"
                      f"input_size: [{', '.join(['1'] * 10_000)}]\n{'k' * 1000}: 1\n")  # YAML's longest plain key
    text = user_error(run_cli(["study", "--config", config, "--out", tmp_path / "s", "--quiet"], capsys),
                      "study.yaml", "unknown setting")
    assert len(text) < 600 and "…" in text
    config.write_text(f"data: {shapes}\nstrategies: [{'x' * 50_000}, {', '.join(names)}]\n"
                      f"input_size: [{', '.join(['1'] * 10_000)}]\n")
    text = user_error(run_cli(["study", "--config", config, "--out", tmp_path / "s", "--quiet"], capsys),
                      "'strategies'", "'input_size'", "more")
    assert len(text) < 3000 and "x" * 100 not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_shorten_bounds_any_value():
    from medtransfer.errors import parameter_error, shorten

    tree: object = ["linear"] * 9
    for _ in range(8):  # 9**9 names if repr'd in full
        tree = [tree] * 9
    started = time.perf_counter()
    quoted = [shorten(v) for v in (tree, "y" * 10**6, 10**4000, {"k" * 500: "v"}, b"z" * 1000)]
    assert time.perf_counter() - started < 1
    assert all(len(q) <= 80 and ("..." in q or "…" in q) for q in quoted), quoted
    assert parameter_error("lr", "TrainConfig", "a number > 0", -1) == (
        "The 'lr' parameter of TrainConfig must be a number > 0. Got -1 instead.")


# -- 6. named pipes, sockets and devices among the images -----------------------------------------------------------
@needs_fifo
def test_a_named_pipe_among_the_images_is_skipped_with_a_notice(shapes, tmp_path):
    data = Path(shutil.copytree(shapes, tmp_path / "data"))
    (data / "disk" / "a").mkdir()
    os.mkfifo(data / "disk" / "a" / "pipe.png")
    out = tmp_path / "run"
    code, _, err = run_cli_subprocess(["train", "--data", data, "--strategy", "linear", "--out", out, *QUICK])
    assert code == 0, err
    text = " ".join(err.split())
    assert "1 file(s) that are not regular files" in text and "disk/a/pipe.png" in text and "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert any("disk/a/pipe.png" in n for n in metrics["data"]["notices"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]  # no .run.partial-… folder


@needs_fifo
def test_a_named_pipe_given_by_name_is_refused(model, shapes, tmp_path):
    rows = [f"{p},{p.parent.name}" for p in sorted(shapes.rglob("*.png"))]
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "m.csv").write_text("path,label\n" + "\n".join(rows + [f"{tmp_path / 'pipe.png'},disk"]) + "\n")
    code, _, err = run_cli_subprocess(["train", "--data", tmp_path / "m.csv", "--out", tmp_path / "r", *QUICK])
    user_error((code, "", err), "m.csv, line 26", "pipe.png", "not a regular file")
    code, _, err = run_cli_subprocess(["predict", model, tmp_path / "pipe.png", "--out", tmp_path / "p", "--quiet"])
    user_error((code, "", err), "none of the 1 images")
    assert "not a regular file" in (tmp_path / "p" / "errors.csv").read_text()
    images = Path(shutil.copytree(shapes / "disk", tmp_path / "images"))
    os.mkfifo(images / "pipe.png")  # in a folder of new images: listed in errors.csv, the others predicted
    code, out, err = run_cli_subprocess(["predict", model, images, "--out", tmp_path / "q", "--quiet"])
    assert code == 0 and "12 images predicted" in " ".join(out.split()), err
    assert "pipe.png,\"not a regular file" in (tmp_path / "q" / "errors.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "m.csv", "p", "pipe.png", "q"]


def test_the_run_folder_is_made_after_the_data_are_read(tmp_path):
    """A read that fails, or never ends and is killed, must find no folder to leave behind: while any image is read,
    neither the run folder nor its hidden partial sibling exists yet."""
    from medtransfer import RunConfig, train
    from medtransfer.data.sources import LabelledImages, Sample

    rng = np.random.default_rng(1)
    seen: list[list[str]] = []

    def loader(image):
        def load():
            seen.append(sorted(p.name for p in tmp_path.iterdir()))
            return image
        return load

    samples = [Sample(ref=f"{kind}{i}", load=loader(shape_image(kind, rng, 32)), target=k)
               for k, kind in enumerate(("disk", "square")) for i in range(12)]
    data = LabelledImages(samples=samples, class_names=["disk", "square"], label_kind="binary", name="generated")
    config = RunConfig(data="generated", strategy="linear", input_size=32, augmentation="none",
                       train={"epochs": 1, "batch_size": 8})
    train(config, tmp_path / "run", data=data)
    assert len(seen) >= 24 and all(names == [] for names in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# -- 9. a damaged model.json ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "needle"), [
    ("input_size", -1, "'input_size' must be an integer between 16 and 1024 (pixels), not -1"),
    ("input_size", "32", "'input_size' must be an integer"),
    ("input_size", 10**9, "'input_size'"),
    ("class_names", [], "'class_names' must be a non-empty list"),
    ("class_names", ["disk", "disk"], "'class_names'"),
    ("channels", 2, "'channels' must be 1 (gray) or 3 (RGB), not 2"),
    ("temperature", 0, "'temperature' must be a number > 0"),
    ("window", [40, -5], "'window'"),
    ("backbone", 7, "'backbone'"),
    ("strategy", None, "'strategy'"),
    ("input_size", None, "'input_size'"),
    ("class_names", "missing", "class_names are missing"),
])
def test_a_damaged_model_json_is_refused_before_any_output(key, value, needle, model, shapes, tmp_path, capsys):
    run = Path(shutil.copytree(model, tmp_path / "run"))
    spec = json.loads((run / "model.json").read_text())
    if value == "missing":
        del spec[key]
    else:
        spec[key] = value
    (run / "model.json").write_text(json.dumps(spec))
    before = listing(tmp_path)
    user_error(run_cli(["predict", run, shapes / "disk", "--out", tmp_path / "p", "--quiet"], capsys),
               "model.json", needle)
    user_error(run_cli(["export", run, "--out", tmp_path / "m.onnx"], capsys), "model.json", needle)
    user_error(run_cli(["evaluate", run, "--data", shapes], capsys), "model.json", needle)
    assert listing(tmp_path) == before


# -- 10. outputs written whole or not at all ------------------------------------------------------------------------
def test_a_failed_export_check_leaves_neither_file(model, shapes, tmp_path, capsys):
    check = Path(shutil.copytree(shapes / "disk", tmp_path / "check"))
    (check / "broken.png").write_text("not a png")
    run = Path(shutil.copytree(model, tmp_path / "run"))
    before = listing(tmp_path)
    user_error(run_cli(["export", run, "--out", tmp_path / "m.onnx", "--check", check], capsys), "broken.png")
    user_error(run_cli(["export", run, "--check", check], capsys), "broken.png")  # into the run folder
    assert listing(tmp_path) == before


def test_an_existing_export_is_replaced_only_with_overwrite(model, tmp_path, capsys):
    code, _, err = run_cli(["export", model, "--out", tmp_path / "m.onnx"], capsys)
    assert code == 0, err
    before = listing(tmp_path)
    user_error(run_cli(["export", model, "--out", tmp_path / "m.onnx"], capsys), "m.onnx already exists",
               "--overwrite")
    assert listing(tmp_path) == before
    (tmp_path / "m.onnx.json").unlink()  # a sidecar alone, or an ONNX file alone, is an existing export too
    user_error(run_cli(["export", model, "--out", tmp_path / "m.onnx"], capsys), "already exists")
    code, _, err = run_cli(["export", model, "--out", tmp_path / "m.onnx", "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]
    assert json.loads((tmp_path / "m.onnx.json").read_text())["check"]["max_abs_diff"] <= 1e-4


def test_predict_into_an_earlier_predictions_folder(model, shapes, tmp_path, capsys):
    first = Path(shutil.copytree(shapes / "disk", tmp_path / "first"))
    (first / "broken.png").write_text("not a png")
    out = tmp_path / "p"
    code, _, err = run_cli(["predict", model, first, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "broken.png" in (out / "errors.csv").read_text()
    before = listing(tmp_path)
    user_error(run_cli(["predict", model, shapes / "square", "--out", out, "--quiet"], capsys),
               "p already exists", "--overwrite")
    assert listing(tmp_path) == before
    code, _, err = run_cli(["predict", model, shapes / "square", "--out", out, "--overwrite", "--quiet"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv"]  # the old errors.csv went with its set
    assert "square" in (out / "predictions.csv").read_text() and "first" not in (out / "predictions.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "p"]


def test_predict_refuses_an_output_inside_its_inputs(model, shapes, tmp_path, capsys):
    images = Path(shutil.copytree(shapes / "disk", tmp_path / "images"))
    before = listing(tmp_path)
    user_error(run_cli(["predict", model, images, "--out", images / "p", "--quiet"], capsys),
               "inside the data folder")
    assert listing(tmp_path) == before
