"""The precision policy: float32 on a CPU unless bf16 is asked for; bf16 autocast trains (the AMP path that CUDA
takes, tested on this CPU); float16 only on CUDA."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from medtransfer import RunConfig, TrainConfig, create_backbone, train
from medtransfer.errors import ConfigError
from medtransfer.study import Study, StudyConfig
from medtransfer.training import precision as policy
from medtransfer.training.precision import cpu_has_bf16, resolve_precision
from medtransfer.training.timings import Verdicts, machine_key

FAST = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


def test_auto_is_float32_on_a_cpu_and_fp16_needs_cuda():
    assert resolve_precision("auto", "cpu").name == "fp32"
    assert resolve_precision("bf16", "cpu").name == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="'precision' parameter"):
        RunConfig(data="x", precision="int8")


def test_fp16_on_a_cpu_is_refused_before_a_study_starts(shape_folder, tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Study(StudyConfig(data=str(shape_folder), precision="fp16"), tmp_path / "s", device="cpu").run(log=print)
    assert not (tmp_path / "s").exists()


def test_bf16_autocast_trains_with_float32_weights(shape_folder, tmp_path):
    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        result = train(RunConfig(data=str(shape_folder), strategy="full", input_size=32, train=FAST,
                                 precision=precision, device="cpu"), out)
        runs[precision] = result
        spec = json.loads((out / "model.json").read_text())
        assert spec["precision"] == precision
    losses = {p: [h["train_loss"] for h in r.fit.history] for p, r in runs.items()}
    assert all(np.isfinite(v).all() and v[-1] < v[0] for v in losses.values())  # both learn
    assert losses["bf16"] != losses["fp32"]  # autocast was on: the bf16 steps round differently
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(tmp_path / "bf16" / "model.safetensors").values()
            if t.is_floating_point()} == {torch.float32}
    # and autocast changes only the rounding: one network (ImageNet features, a seeded new head), one batch of the
    # images, the loss in float32 and under the policy's autocast (a comparison of training curves is not one: a tiny
    # set's curve moves by hundredths when float32 merely sums in another order)
    torch.manual_seed(0)
    net = create_backbone("tf_efficientnet_lite0", "imagenet", num_classes=2).model.eval()
    x, y = _batch(shape_folder)
    with torch.no_grad():
        fp32 = float(torch.nn.functional.cross_entropy(net(x), y))
        with resolve_precision("bf16", "cpu").autocast():
            bf16 = float(torch.nn.functional.cross_entropy(net(x), y))
    assert 0 < abs(bf16 - fp32) < 0.01 * fp32, (fp32, bf16)


def _batch(folder, n=32):
    """``n`` of the generated images (every class), as a float batch at their own size, with their labels."""
    classes = sorted(p.name for p in folder.iterdir())
    files = [f for c in classes for f in sorted((folder / c).glob("*.png"))[: n // len(classes)]]
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32)), dtype=np.float32) for f in files])
    labels = torch.tensor([classes.index(f.parent.name) for f in files])
    return (torch.from_numpy(x).permute(0, 3, 1, 2) / 255 - 0.5) / 0.25, labels


@pytest.mark.slow
def test_bf16_keeps_breastmnist_validation_auc_within_the_seed_spread(breastmnist, tmp_path):
    """The opt-in bf16 path on real data: its mean validation AUC over three seeds differs from float32's by no more
    than float32's own seed-to-seed range (the CPU policy, ``auto``, is float32 itself)."""
    if not torch.cpu._is_avx512_bf16_supported():
        pytest.skip("this CPU has no bf16 units: bf16 is emulated and not what the policy would ever pick")
    val = {}
    for precision in ("fp32", "bf16"):
        config = StudyConfig(data=str(breastmnist), input_size=64, strategies=["tune:2"], fractions=[0.25],
                             seeds=[0, 1, 2], precision=precision,
                             train=TrainConfig(epochs=8, patience=None, warmup_epochs=1))
        Study(config, tmp_path / precision, device="cpu").run(log=lambda *_: None)
        val[precision] = Study(config, tmp_path / precision, device="cpu").results().val_score.to_numpy()
    spread = np.ptp(val["fp32"])
    assert np.isfinite(val["bf16"]).all() and val["bf16"].mean() > 0.65  # it learns (chance: 0.5)
    assert abs(val["bf16"].mean() - val["fp32"].mean()) <= spread, (val, spread)


def test_auto_on_a_cpu_times_both_precisions_once_and_leaves_the_training_as_it_was(shape_folder, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setenv("MEDTRANSFER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(policy, "_VERDICTS", Verdicts("precision.json"))

    def run(name, chosen="auto"):
        result = train(RunConfig(data=str(shape_folder), strategy="tune:2", input_size=32, train=FAST,
                                 precision=chosen, device="cpu"), tmp_path / name)
        return json.loads((tmp_path / name / "model.json").read_text())["precision"], result

    first, timed = run("first")
    stored = tmp_path / "cache" / "precision.json"
    if not cpu_has_bf16():  # bf16 is emulated here: auto is float32 and nothing is timed
        assert first == "fp32" and not stored.exists()
        return
    (case, verdict), = json.loads(stored.read_text())[machine_key()].items()
    assert "tune:2" in case and verdict["fp32_ms"] > 0 and verdict["bf16_ms"] > 0 and first == verdict["precision"]
    # the timed steps ran on a copy: the same training as with that precision asked for
    same, plain = run("asked", first)
    assert same == first and [h["train_loss"] for h in timed.fit.history] == [h["train_loss"] for h in plain.fit.history]
    # a later process follows the file without timing: the verdict written there is what it does
    other = "fp32" if first == "bf16" else "bf16"
    stored.write_text(json.dumps({machine_key(): {case: {**verdict, "precision": other}}}))
    monkeypatch.setattr(policy, "_VERDICTS", Verdicts("precision.json"))
    monkeypatch.setattr(policy, "compare_ms", lambda *a, **k: pytest.fail("timed a case the file knows"))
    assert run("second")[0] == other
