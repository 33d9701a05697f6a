"""``export``: an ONNX graph that takes uint8 images and gives what predict gives, also where there is no PyTorch."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from generated import run_cli

from medtransfer import RunConfig, TrainConfig, train
from medtransfer.delivery.export import export_model
from medtransfer.delivery.predict import predict
from medtransfer.errors import ConfigError

FAST = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)


@pytest.fixture(scope="module")
def classifier(shape_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("classifier") / "run"
    train(RunConfig(data=str(shape_folder), strategy="tune:1", input_size=32, train=FAST), out)
    return out


def test_the_onnx_graph_gives_predicts_probabilities(classifier, shape_folder, tmp_path, capsys):
    code, out, err = run_cli(["export", classifier, "--format", "onnx", "--out", tmp_path / "m.onnx",
                              "--check", shape_folder], capsys)
    assert code == 0, err
    assert "max abs difference" in out
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert side["class_names"] == ["disk", "square"] and side["input"]["shape"] == ["batch", "channels", "height",
                                                                                  "width"]
    assert side["input"]["dtype"] == "uint8" and side["check"]["images"] == 67  # 7 random + 60 given
    assert side["check"]["max_abs_diff"] <= 1e-4
    assert side["preprocessing"]["inside_the_graph"]["temperature"] == json.loads(
        (classifier / "model.json").read_text())["temperature"]

    import onnxruntime as ort

    predict(classifier, shape_folder, tmp_path / "p")
    rows = list(csv.DictReader(open(tmp_path / "p" / "predictions.csv")))
    from medtransfer.delivery.inputs import read_new_image

    spec = json.loads((classifier / "model.json").read_text())
    x = np.stack([read_new_image(r["path"], spec).pixels[None] for r in rows])  # decoded, at their own size (40)
    assert x.shape == (60, 1, 40, 40)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"image": x})[0]
    np.testing.assert_allclose(probs, [[float(r["p_disk"]), float(r["p_square"])] for r in rows], atol=1e-4)


def test_the_onnx_file_runs_with_only_onnxruntime_numpy_and_pillow(classifier, shape_folder, tmp_path):
    """A fresh interpreter without site-packages (``python -I -S``) whose path holds the standard library and a
    folder with links to the three packages only: PyTorch cannot be imported there."""
    import numpy
    import onnxruntime
    import PIL

    result = export_model(classifier, tmp_path / "m.onnx")
    only = tmp_path / "site"
    only.mkdir()
    for module in (onnxruntime, numpy, PIL):
        package = Path(module.__file__).parent
        os.symlink(package, only / package.name)
        libs = package.parent / f"{'pillow' if package.name == 'PIL' else package.name}.libs"
        if libs.is_dir():
            os.symlink(libs, only / libs.name)
    image = shape_folder / "disk" / "disk_000.png"
    script = f"""
import sys
sys.path.append({str(only)!r})
try:
    import torch
    raise SystemExit("torch is importable")
except ImportError:
    pass
import json, numpy as np, onnxruntime as ort
from PIL import Image
side = json.load(open({str(result.sidecar)!r}))
x = np.asarray(Image.open({str(image)!r}).convert("L"), dtype=np.uint8)  # decoded only: the graph resizes it
p = ort.InferenceSession({str(result.path)!r}, providers=["CPUExecutionProvider"]).run(None, {{"image": x[None, None]}})[0]
print(json.dumps(dict(zip(side["class_names"], p[0].tolist()))))
"""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probs = json.loads(done.stdout)
    assert set(probs) == {"disk", "square"} and sum(probs.values()) == pytest.approx(1, abs=1e-5)


def test_a_segmentation_model_exports_per_pixel_probabilities(blob_folder, tmp_path):
    run = tmp_path / "seg"
    train(RunConfig(data=str(blob_folder), strategy="linear", input_size=64, task="segmentation", train=FAST,
                    task_options={"decoder": "fpn"}), run)
    result = export_model(run)
    assert result.path == run / "model.onnx" and result.max_abs_diff <= 1e-4
    side = json.loads(result.sidecar.read_text())
    assert side["output"]["shape"] == ["batch", 2, "height", "width"]
    assert side["input"]["shape"] == ["batch", "channels", "height", "width"]


def test_an_unknown_format_is_refused(classifier, capsys):
    code, _out, err = run_cli(["export", classifier, "--format", "tflite"], capsys)
    assert code == 2 and "choose onnx" in err
    with pytest.raises(ConfigError):
        export_model(classifier, format="torchscript")
