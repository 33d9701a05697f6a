import numpy as np
import pytest
import torch

from medtransfer import RunConfig, TrainConfig
from medtransfer.data import read_source
from medtransfer.data.dataset import load_images
from medtransfer.errors import ConfigError
from medtransfer.engine import build_network, image_loader
from medtransfer.strategies import parse_strategy
from medtransfer.training import Trainer
from medtransfer.training.optimizer import param_groups, warmup_cosine


def test_schedule_warms_up_then_decays_to_the_floor():
    f = warmup_cosine(total_steps=100, warmup_steps=10, floor=0.01)
    values = [f(s) for s in range(100)]
    assert values[0] < values[5] < values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] == pytest.approx(0.01, abs=0.01)


def test_learning_rates_per_group():
    data_cfg = RunConfig(data="x", strategy="tune:3", train=TrainConfig(lr=1e-3, head_lr_multiplier=10, layer_decay=0.5))
    from medtransfer.backbones import create_backbone
    from medtransfer.tasks import get_task

    task = get_task("classification").from_spec({"class_names": ["a", "b"], "label_kind": "binary"})
    net = task.head.build_network(create_backbone(weights="scratch"), parse_strategy("tune:3"))
    lrs = sorted({g["lr"] for g in param_groups(net, data_cfg.train)})
    assert lrs == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-2])


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_optimiser_is_fused_and_updates_like_the_plain_one(optimizer):
    from medtransfer.backbones import create_backbone
    from medtransfer.tasks import get_task
    from medtransfer.training.optimizer import build_optimizer

    cfg = TrainConfig(optimizer=optimizer, lr=1e-2)
    torch.manual_seed(0)
    task = get_task("classification").from_spec({"class_names": ["a", "b"], "label_kind": "binary"})
    net = task.head.build_network(create_backbone(weights="scratch"), parse_strategy("tune:1"))
    start = {n: p.detach().clone() for n, p in net.suffix.named_parameters()}
    fused = build_optimizer(net, cfg)
    assert fused.defaults["fused"] is True
    plain = (torch.optim.SGD(param_groups(net, cfg), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
             if optimizer == "sgd" else torch.optim.AdamW(param_groups(net, cfg), lr=cfg.lr))
    x = torch.rand(4, 3, 32, 32)
    after = []
    for opt in (fused, plain):
        with torch.no_grad():
            for n, p in net.suffix.named_parameters():
                p.copy_(start[n])
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
        after.append({n: p.detach().clone() for n, p in net.suffix.named_parameters() if p.requires_grad})
    assert any(not torch.equal(after[0][n], start[n]) for n in after[0])
    # one step: the same update up to float rounding (later steps drift apart: where Adam divides a gradient near
    # zero by its own root, a rounding difference can flip the sign of a whole step)
    for n in after[0]:
        torch.testing.assert_close(after[0][n], after[1][n], rtol=1e-5, atol=1e-4 * cfg.lr)


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
    assert TrainConfig(epochs=30).earliest_stop() == 20 and TrainConfig(epochs=30, min_epochs=3).earliest_stop() == 3
    data = read_source(shape_folder)
    targets = data.targets()
    cfg = RunConfig(data=str(shape_folder), strategy="linear", input_size=32, augmentation="none",
                    train=TrainConfig(epochs=6, batch_size=8, patience=1, min_epochs=4, lr=1e-12, ema_decay=None))
    _, task, net = build_network(cfg, parse_strategy("linear"), data, targets)
    loader = image_loader(task, load_images(data, np.arange(len(targets)), 32), targets, 8, shuffle=True)
    result = Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader)
    # a learning rate of 1e-12 never improves on epoch 1: stopped at the earliest allowed epoch, not before
    assert result.stopped == "early_stopped" and len(result.history) == 4


def test_the_default_budget_follows_the_training_set():
    from medtransfer.training.config import MAX_EPOCHS, MIN_EPOCHS

    cfg = TrainConfig()
    assert cfg.epochs is None
    assert cfg.epochs_for(17) == MAX_EPOCHS == 30  # BreastMNIST: 546 training images in batches of 32
    assert cfg.epochs_for(5) == 30  # a quarter of it: capped, not 108 epochs
    assert cfg.epochs_for(147) == MIN_EPOCHS == 8  # a 4,708-image set: 5 epochs would reach the steps; the floor
    assert cfg.epochs_for(45) == 12 and 45 * 12 >= cfg.budget_steps > 45 * 11
    assert TrainConfig(epochs=5).epochs_for(1000) == 5  # given epochs win
    assert cfg.earliest_stop(12) == 8 and cfg.earliest_stop() == 20


def test_a_run_without_epochs_trains_its_budget(shape_folder):
    data = read_source(shape_folder)
    targets = data.targets()
    cfg = RunConfig(data=str(shape_folder), strategy="linear", input_size=32, augmentation="none",
                    train=TrainConfig(batch_size=8, budget_steps=20, patience=None, ema_decay=None))
    _, task, net = build_network(cfg, parse_strategy("linear"), data, targets)
    loader = image_loader(task, load_images(data, np.arange(len(targets)), 32), targets, 8, shuffle=True)
    result = Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader)
    expected = cfg.train.epochs_for(len(loader))
    assert result.epochs == expected == len(result.history) and expected >= 8


def test_with_an_ema_the_better_of_average_and_live_weights_is_kept(shape_folder):
    """A weight average that lags the live weights (decay 0.999 over a few dozen steps: still mostly the start's)
    scores below them; the run keeps the live weights then, and its best score is the better of the two."""
    data = read_source(shape_folder)
    targets = data.targets()
    cfg = RunConfig(data=str(shape_folder), strategy="tune:1", input_size=32, augmentation="none",
                    train=TrainConfig(epochs=4, batch_size=8, patience=None, warmup_epochs=1, ema_decay=0.999))
    _, task, net = build_network(cfg, parse_strategy("tune:1"), data, targets)
    x = load_images(data, np.arange(len(targets)), 32)
    loader = image_loader(task, x, targets, 8, shuffle=True, seed=0)
    result = Trainer(task, cfg.train, torch.device("cpu")).fit(net, loader, loader)
    for h in result.history:
        assert h["val_auc"] == max(h["val_auc_ema"], h["val_auc_live"])
        assert h["kept"] == ("live" if h["val_auc_live"] > h["val_auc_ema"] else "ema")
    assert {h["kept"] for h in result.history} == {"live"} or result.history[-1]["val_auc_live"] <= 0.5
    assert result.best_score == max(h["val_auc"] for h in result.history)
    # what is kept is what was scored: the restored suffix scores the best epoch's score again
    predictions, y, _ = Trainer(task, cfg.train, torch.device("cpu")).predict(net, loader)
    assert task.scorer.score(predictions, y) == pytest.approx(result.best_score)
