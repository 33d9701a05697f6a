"""One training run end to end on generated images: the run folder, re-evaluation, reproducibility, divergence."""

import json

import numpy as np
import pytest
import torch

from medtransfer import (
    RunConfig,
    TrainConfig,
    TrainingDiverged,
    evaluate,
    load_model,
    train,
)
from medtransfer.data import read_source
from medtransfer.data.dataset import load_images
from medtransfer.engine import build_network, image_loader
from medtransfer.strategies import parse_strategy
from medtransfer.training import Trainer

FAST = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


def test_run_folder_holds_model_metrics_and_curve(shape_folder, tmp_path):
    out = tmp_path / "run"
    result = train(RunConfig(data=str(shape_folder), strategy="tune:2", input_size=32, train=FAST), out)
    for name in ("model.safetensors", "model.json", "metrics.json", "history.csv", "curve.png", "test_predictions.csv"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    for metric in ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity"):
        t = m["test"][metric]
        assert t["ci_low"] <= t["value"] <= t["ci_high"]
    assert m["epochs_run"] == 3 and len((out / "history.csv").read_text().splitlines()) == 4
    assert m["data"]["counts"]["test"] == 12 and m["data"]["classes"] == ["disk", "square"]
    spec = json.loads((out / "model.json").read_text())
    assert spec["strategy"] == "tune:2" and spec["frozen_groups"] == 6 and spec["input_size"] == 32
    assert result.metrics["test"]["auc"]["value"] == m["test"]["auc"]["value"]

    # the saved model re-scores the same test split to the same AUC
    again = evaluate(out, str(shape_folder), device="cpu")
    assert again["n"] == 12
    assert again["metrics"]["auc"]["value"] == pytest.approx(m["test"]["auc"]["value"], abs=1e-9)
    # and it is plain timm underneath: timm + safetensors rebuild it without medtransfer
    import timm
    from safetensors.torch import load_file

    plain = timm.create_model("tf_efficientnet_lite0", num_classes=2)
    plain.load_state_dict(load_file(str(out / "model.safetensors")))


def test_fine_tuning_learns_the_generated_task(shape_folder, tmp_path):
    cfg = RunConfig(data=str(shape_folder), strategy="full", input_size=32, augmentation="none",
                    train=TrainConfig(epochs=6, batch_size=8, patience=None, warmup_epochs=1))
    result = train(cfg, tmp_path / "run")
    assert result.metrics["val"]["auc"] >= 0.9
    assert result.fit.history[-1]["train_loss"] < result.fit.history[0]["train_loss"]


def test_same_seed_same_run(shape_folder, tmp_path):
    cfg = RunConfig(data=str(shape_folder), strategy="tune:1", input_size=32, seed=3, train=FAST)
    a = train(cfg, tmp_path / "a").fit.history
    b = train(cfg, tmp_path / "b").fit.history
    assert [h["train_loss"] for h in a] == [h["train_loss"] for h in b]
    assert [h["val_auc"] for h in a] == [h["val_auc"] for h in b]


def test_non_finite_loss_stops_and_keeps_the_best_checkpoint(shape_folder, tmp_path):
    data = read_source(shape_folder)
    targets = data.targets()
    no_ema = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1, ema_decay=None)
    cfg = RunConfig(data=str(shape_folder), strategy="linear", input_size=32, train=no_ema)
    backbone, task, net = build_network(cfg, parse_strategy("linear"), data, targets)
    loader = image_loader(task, load_images(data, np.arange(len(targets)), 32), targets, 8, shuffle=True)
    saved = {}

    def on_best(net_, epoch):
        saved[epoch] = net_.suffix.head.parts["classifier"].weight.detach().clone()
        if epoch == 1:  # the weights blow up after the first checkpoint
            with torch.no_grad():
                net_.suffix.head.parts["classifier"].weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"non-finite in epoch 2.*best checkpoint \(epoch 1\)") as err:
        Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader, on_best=on_best)
    assert err.value.epoch == 2 and err.value.best_epoch == 1
    assert torch.isfinite(net.suffix.head.parts["classifier"].weight).all()


def test_load_model_rebuilds_the_strategy(shape_folder, tmp_path):
    train(RunConfig(data=str(shape_folder), strategy="tune:3", input_size=32, train=FAST), tmp_path / "r")
    saved = load_model(tmp_path / "r")
    assert saved.net.frozen_groups == 5 and saved.input_size == 32
    x = torch.randint(0, 255, (2, 1, 32, 32), dtype=torch.uint8)
    assert saved.net(x).shape == (2, 2)
