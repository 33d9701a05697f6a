"""A strategy's earlier stages (:attr:`~medtransfer.strategies.Strategy.stages`), trained before its own: each
stage's network is cut from the trial's backbone, trained, and hands its head on to the next network."""

from __future__ import annotations

import torch

from medtransfer.backbones import Backbone
from medtransfer.engine.loaders import TrialBatches
from medtransfer.networks import TransferNet
from medtransfer.strategies import Strategy
from medtransfer.tasks import Task
from medtransfer.training import Trainer


def first_strategy(strategy: Strategy, resuming: bool) -> Strategy:
    """What the trial's first network is cut for: its first stage's strategy, unless it has none or it resumes
    after its stages (a paused trial paused in its own stage)."""
    return strategy.stages[0].strategy if strategy.stages and not resuming else strategy


def run_stages(strategy: Strategy, net: TransferNet, backbone: Backbone, task: Task, trainer: Trainer,
               batches: TrialBatches) -> tuple[TransferNet, dict]:
    """Train ``strategy``'s stages from ``net`` (cut for the first of them): the network cut for ``strategy``
    itself, holding the last stage's head, and each stage's record (its name -> epochs, best epoch and score,
    seconds) for the spec."""
    records: dict = {}
    following = [s.strategy for s in strategy.stages[1:]] + [strategy]
    for stage, after in zip(strategy.stages, following):
        cached = batches.reads_cache(stage.strategy, backbone, net)
        train, val, _ = batches.loaders(net.frozen_groups, cached)
        fit = trainer.fit(net, train, val, cached=cached)
        records[stage.name] = {"epochs": len(fit.history), "best_epoch": fit.best_epoch,
                               f"val_{task.scorer.metric.name}": fit.best_score, "seconds": fit.seconds}
        net = _carry_head(net, task.head.build_network(backbone, after).to(memory_format=torch.channels_last))
    return net, records


def _carry_head(trained: TransferNet, following: TransferNet) -> TransferNet:
    """``following`` with ``trained``'s head weights (a network cut again from one backbone may share its head)."""
    if following.suffix.head is not trained.suffix.head:
        following.suffix.head.load_state_dict(trained.suffix.head.state_dict())
    return following
