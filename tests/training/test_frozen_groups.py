"""Frozen means frozen: after real training, every tensor of every frozen group is bit-identical."""

import numpy as np
import pytest
import torch

from medtransfer.data import Augmentation, read_source
from medtransfer.data.dataset import load_images
from medtransfer.config import RunConfig
from medtransfer.engine import build_network, image_loader
from medtransfer.strategies import parse_strategy
from medtransfer.training import TrainConfig, Trainer
from medtransfer.training.optimizer import param_groups


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    return {k: v.detach().clone() for k, v in tensors.items()}


def _network(folder, strategy: str):
    """A two-epoch run's settings on the generated images, and the network cut for ``strategy``."""
    data = read_source(folder)
    targets = data.targets()
    config = RunConfig(data=str(folder), strategy=strategy, input_size=32,
                       train=TrainConfig(epochs=2, batch_size=8, patience=None))
    s = parse_strategy(strategy)
    backbone, task, net = build_network(config, s, data, targets)
    x = load_images(data, np.arange(len(targets)), 32)
    loader = image_loader(task, x, targets, 8, augment=task.codec.augment(Augmentation().build()), shuffle=True)
    return config, s, backbone, task, net, loader


@pytest.mark.parametrize("strategy", ["linear", "tune:1", "tune:3"])
def test_frozen_groups_are_bit_identical_after_training(shape_folder, strategy):
    config, s, backbone, task, net, loader = _network(shape_folder, strategy)
    k = s.frozen_groups(backbone.num_groups)
    assert net.frozen_groups == k == backbone.num_groups - s.trainable_groups(backbone.num_groups)
    frozen_before = _snapshot(net.prefix)
    trainable_before = _snapshot(net.suffix)
    assert len([n for n in frozen_before if "running_mean" in n]) > 0  # BatchNorm buffers are checked too

    trainer = Trainer(task, config.train, torch.device("cpu"))
    optimizer_params = {id(p) for g in param_groups(net, config.train) for p in g["params"]}
    assert not optimizer_params & {id(p) for p in net.prefix.parameters()}
    trainer.fit(net, loader, loader)

    assert not net.prefix.training  # stays in eval mode while the suffix trains
    for name, before in frozen_before.items():
        after = (dict(net.prefix.named_parameters()) | dict(net.prefix.named_buffers()))[name]
        assert torch.equal(before, after), f"{strategy}: frozen tensor {name} changed"
        assert not after.requires_grad
    changed = [n for n, v in _snapshot(net.suffix).items() if not torch.equal(v, trainable_before[n])]
    assert any("head" in n for n in changed), "the classifier did not train"
    if strategy != "linear":
        assert any(n.startswith("layers.") and "running_mean" in n for n in changed), "tuned BatchNorm did not update"


@pytest.mark.parametrize("strategy", ["surgical:1", "surgical:3"])
def test_surgical_trains_one_group_and_gradients_pass_the_frozen_ones_above_it(shape_folder, strategy):
    config, s, backbone, task, net, loader = _network(shape_folder, strategy)
    n = backbone.num_groups
    assert net.frozen_groups == s.depth - 1 and s.trainable_groups(n) == 1
    tuned, *above = net.suffix.layers
    before = {"prefix": _snapshot(net.prefix), "above": _snapshot(torch.nn.ModuleList(above)), "tuned": _snapshot(tuned)}
    optimizer_params = {id(p) for g in param_groups(net, config.train) for p in g["params"]}
    assert optimizer_params == {id(p) for p in [*tuned.parameters(), *net.suffix.head.parameters()]}

    Trainer(task, config.train, torch.device("cpu")).fit(net, loader, loader)

    net.train()
    assert all(not m.training for m in above)  # in eval mode while the network trains: statistics stay
    for name, module in (("prefix", net.prefix), ("above", torch.nn.ModuleList(above))):
        after = _snapshot(module)
        assert all(torch.equal(v, after[k]) for k, v in before[name].items()), f"{strategy}: {name} changed"
    after = _snapshot(tuned)
    changed = [k for k, v in before["tuned"].items() if not torch.equal(v, after[k])]
    assert any("weight" in k for k in changed) and any("running_mean" in k for k in changed)
