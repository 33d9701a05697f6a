"""The exported graph takes a decoded image at its own size: onnxruntime on images of other, non-square sizes gives
what ``predict`` gives, and ``--check-test`` compares it with a run's stored test predictions."""

import csv
import json

import numpy as np
import pytest
from generated import blob_pair, run_cli, shape_image, write_shape_folder
from PIL import Image

from medtransfer import RunConfig, TrainConfig, train
from medtransfer.delivery.export import export_model
from medtransfer.delivery.predict import predict
from medtransfer.errors import ConfigError

FAST = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)
#: (height, width) of the native images: smaller and larger than the input size, never square
SIZES = [(23, 57), (71, 30), (90, 41)]


def _onnx(path, image: np.ndarray) -> np.ndarray:
    """onnxruntime on one decoded image, given as it is (1×C×H×W)."""
    import onnxruntime as ort

    x = image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0][0]


def _pil(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_a_classifier_graph_on_native_non_square_images_gives_predicts_probabilities(shape_folder, tmp_path,
                                                                                      capsys):
    run = tmp_path / "run"
    train(RunConfig(data=str(shape_folder), strategy="linear", input_size=32, train=FAST), run)
    rng = np.random.default_rng(3)
    native = tmp_path / "native"
    native.mkdir()
    for k, (h, w) in enumerate(SIZES):
        image = np.asarray(Image.fromarray(shape_image("disk" if k % 2 else "square", rng, 64)).resize((w, h)))
        Image.fromarray(image).save(native / f"gray_{k}.png")
    colour = (np.stack([shape_image("disk", rng, 64)[:37, :52]] * 3, -1) + [0, 9, 21]).clip(0, 255).astype(np.uint8)
    Image.fromarray(colour).save(native / "colour.png")  # a colour image for a gray model: luma in the graph

    code, out, err = run_cli(["export", run, "--out", tmp_path / "m.onnx", "--check", native,
                              "--check-test", shape_folder], capsys)
    assert code == 0, err
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert side["input"]["shape"] == ["batch", "channels", "height", "width"] and side["input"]["dtype"] == "uint8"
    assert "no resizing" in side["preprocessing"]["caller"][0]
    assert side["preprocessing"]["inside_the_graph"]["resize"]["onnx_resize"]["antialias"] == 1
    assert side["check"]["max_abs_diff"] <= 1e-4 and side["check"]["max_abs_diff_other_sizes"] <= 1e-3
    tested = side["check"]["test_split"]
    assert tested["columns"] == ["p_disk", "p_square"] and tested["images"] == 12  # the folder's 20% test split
    assert tested["max_abs_diff"] <= 1e-3 and "stored p_disk, p_square" in out

    predict(run, native, tmp_path / "p")
    rows = list(csv.DictReader(open(tmp_path / "p" / "predictions.csv")))
    assert len(rows) == 4
    for row in rows:
        got = _onnx(tmp_path / "m.onnx", _pil(row["path"]))
        np.testing.assert_allclose(got, [float(row["p_disk"]), float(row["p_square"])], atol=1e-3)


def test_a_segmentation_graph_gives_predicts_masks_at_the_images_own_size(blob_folder, tmp_path):
    run = tmp_path / "seg"
    train(RunConfig(data=str(blob_folder), strategy="linear", input_size=32, task="segmentation", train=FAST), run)
    rng = np.random.default_rng(4)
    native = tmp_path / "native"
    native.mkdir()
    for k, (h, w) in enumerate(SIZES):
        image, _mask = blob_pair(rng, 64)
        Image.fromarray(image).resize((w, h), Image.BICUBIC).save(native / f"blob_{k}.png")
    Image.fromarray(blob_pair(rng, 48)[0][..., 1]).save(native / "gray.png")  # a gray image for an RGB model

    result = export_model(run, tmp_path / "m.onnx", check=native, check_test=blob_folder)
    side = json.loads(result.sidecar.read_text())
    assert side["output"]["shape"] == ["batch", 2, "height", "width"]
    assert result.max_abs_diff <= 1e-4 and result.other_sizes_diff <= 1e-3
    assert result.test_split.columns == ["dice_foreground"] and result.test_split.max_abs_diff <= 1e-6

    predict(run, native, tmp_path / "p")
    rows = list(csv.DictReader(open(tmp_path / "p" / "areas.csv")))
    assert len(rows) == 4
    for row in rows:
        probs = _onnx(result.path, _pil(row["path"]))
        mask = _pil(tmp_path / "p" / row["mask"])
        assert probs.shape == (2, *mask.shape) == (2, int(row["height"]), int(row["width"]))
        np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
        np.testing.assert_array_equal(probs.argmax(0) * 255, mask)


def test_an_old_opset_or_other_test_data_is_refused_and_nothing_is_written(shape_folder, tmp_path, capsys):
    run = tmp_path / "run"
    train(RunConfig(data=str(shape_folder), strategy="linear", input_size=32,
                    train=TrainConfig(epochs=1, batch_size=8, patience=None, warmup_epochs=0)), run)
    with pytest.raises(ConfigError, match="opset 18"):
        export_model(run, tmp_path / "m.onnx", opset=17)
    other = write_shape_folder(tmp_path / "other", n_per_class=4, classes=("ring", "cross"))
    code, _out, err = run_cli(["export", run, "--out", tmp_path / "m.onnx", "--check-test", other], capsys)
    assert code == 2 and "not the data the run" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.json").exists()
