"""A trial's network: the backbone (seeded), the task set up for the data, the network cut for a strategy, and the
spec its saved model carries."""

from __future__ import annotations

import torch

from medtransfer.backbones import Backbone, create_backbone
from medtransfer.config import RunConfig, Settings
from medtransfer.data import ImageSet
from medtransfer.engine.environment import seed_everything
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks import Task
from medtransfer.tasks.option_failures import network_from_options
from medtransfer.tasks.registry import task_for_data

#: how a saved model wants its input (model.json's ``input``)
INPUT = ("uint8 tensor B×C×H×W (C = 1 or 3), resized to input_size×input_size (bicubic, aspect not kept); the "
         "network normalises it itself")


def model_options(config: Settings) -> dict:
    """Architecture options for ``timm.create_model`` (regularisation that acts in training mode only)."""
    t = config.train
    return {k: v for k, v in (("drop_rate", t.drop_rate), ("drop_path_rate", t.drop_path_rate)) if v}


def build_network(config: RunConfig, strategy: Strategy, data: ImageSet, train_targets,
                  task_type: Task | None = None):
    """The backbone (seeded), the task (``task_type``, or the one that reads data like ``data``) and the network cut
    for ``strategy``."""
    seed_everything(config.seed)
    weights = config.weights if strategy.pretrained else "scratch"
    backbone = create_backbone(config.backbone, weights=weights, num_classes=data.num_classes, **model_options(config))
    task = (task_type or task_for_data(data)).for_data(data, train_targets, config)
    strategy.validate(len(task.head.groups(backbone)))
    with network_from_options(config.task_options, task.name):
        net = task.head.build_network(backbone, strategy).to(memory_format=torch.channels_last)
    return backbone, task, net


def network_spec(config: RunConfig, strategy: Strategy, backbone: Backbone, task: Task, net: TransferNet,
                 channels: int) -> dict:
    """What model.json says of the network: the task's spec, the backbone, its weights and cut, and its input
    (``channels``: 1 for gray images, colour ones being converted; 3 for RGB)."""
    source = config.source_options
    return {
        **task.config(),
        "backbone": config.backbone,
        "weights": config.weights if strategy.pretrained else "scratch",
        "weights_description": backbone.weights_description,
        "strategy": strategy.name,
        "num_groups": len(task.head.groups(backbone)),
        "frozen_groups": net.frozen_groups,
        "input_size": config.input_size,
        "input": INPUT,
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "channels": channels,
        **({"window": list(source["window"])} if source.get("window") else {}),
        **({"axis": int(source["axis"])} if source.get("axis") is not None else {}),
    }
