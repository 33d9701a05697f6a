import numpy as np
import pytest
import torch

from medtransfer import RunConfig, TrainConfig
from medtransfer.data import read_source
from medtransfer.data.dataset import load_images
from medtransfer.errors import ConfigError
from medtransfer.study.trial import build_network, image_loader
from medtransfer.strategies import parse_strategy
from medtransfer.training import Trainer
from medtransfer.training.trainer import _param_groups, warmup_cosine


def test_schedule_warms_up_then_decays_to_the_floor():
    f = warmup_cosine(total_steps=100, warmup_steps=10, floor=0.01)
    values = [f(s) for s in range(100)]
    assert values[0] < values[5] < values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] == pytest.approx(0.01, abs=0.01)


def test_learning_rates_per_group():
    data_cfg = RunConfig(data="x", strategy="tune:3", train=TrainConfig(lr=1e-3, head_lr_multiplier=10, layer_decay=0.5))
    from medtransfer.backbones import create_backbone
    from medtransfer.tasks.classification import ClassificationTask

    net = ClassificationTask(["a", "b"], "binary").build_network(create_backbone(weights="scratch"), parse_strategy("tune:3"))
    lrs = sorted({g["lr"] for g in _param_groups(net, data_cfg.train)})
    assert lrs == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-2])


def test_saving_the_ema_checkpoint_does_not_change_training(shape_folder):
    data = read_source(shape_folder)
    targets = data.targets()
    cfg = RunConfig(data=str(shape_folder), strategy="tune:1", input_size=32, augmentation="none",
                    train=TrainConfig(epochs=3, batch_size=8, patience=None, ema_decay=0.9))
    x = load_images(data, np.arange(len(targets)), 32)

    def fit(on_best):
        _, task, net = build_network(cfg, parse_strategy("tune:1"), data, targets)
        loader = image_loader(task, x, targets, 8, shuffle=True, seed=0)
        result = Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader, on_best=on_best)
        return result, net

    saved = []
    with_saving, _ = fit(lambda net, epoch: saved.append(net.suffix.head.parts["classifier"].weight.clone()))
    without, _ = fit(None)
    assert [h["train_loss"] for h in with_saving.history] == [h["train_loss"] for h in without.history]
    assert saved


def test_invalid_settings_are_named():
    with pytest.raises(ConfigError, match=r"The 'optimizer' parameter of TrainConfig must be one of adamw, sgd\. "
                                          r"Got 'adam' instead\."):
        TrainConfig(optimizer="adam")
    with pytest.raises(ConfigError, match=r"The 'epoch' parameter of TrainConfig must be one of .*epochs"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError) as every:  # every problem at once, one per line
        TrainConfig(lr=-1, epochs=0)
    assert "'lr'" in str(every.value) and "'epochs'" in str(every.value)


def test_early_stopping_waits_for_the_earliest_stop(shape_folder):
    assert TrainConfig(epochs=30).earliest_stop == 20 and TrainConfig(epochs=30, min_epochs=3).earliest_stop == 3
    data = read_source(shape_folder)
    targets = data.targets()
    cfg = RunConfig(data=str(shape_folder), strategy="linear", input_size=32, augmentation="none",
                    train=TrainConfig(epochs=6, batch_size=8, patience=1, min_epochs=4, lr=1e-12, ema_decay=None))
    _, task, net = build_network(cfg, parse_strategy("linear"), data, targets)
    loader = image_loader(task, load_images(data, np.arange(len(targets)), 32), targets, 8, shuffle=True)
    result = Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader)
    # a learning rate of 1e-12 never improves on epoch 1: stopped at the earliest allowed epoch, not before
    assert result.stopped == "early_stopped" and len(result.history) == 4
