"""The demo: the whole layer-wise study on BreastMNIST, on a grid small enough for a 2-core CPU (8–18 minutes; docs/benchmarks.md)."""

from __future__ import annotations

from medtransfer.study.config import StudyConfig
from medtransfer.training import TrainConfig

#: every strategy, 2 training-set sizes, 1 seed; short schedules at a small input size (measured in docs/benchmarks.md).
DEMO_INPUT_SIZE = 80
DEMO_TRAIN = TrainConfig(epochs=14, patience=6, warmup_epochs=1)


def demo_config(data: str = "breastmnist") -> StudyConfig:
    return StudyConfig(data=data, input_size=DEMO_INPUT_SIZE, fractions=[1.0, 0.25], seeds=[0], train=DEMO_TRAIN)
