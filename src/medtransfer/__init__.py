"""medtransfer: full training or fine-tuning? Layer-wise transfer-learning studies for small medical image datasets.

The Python API and the ``medtransfer`` command are two faces of one thing::

    from medtransfer import RunConfig, train
    result = train(RunConfig(data="breastmnist", strategy="tune:3", seed=0), "runs/breast-t3")
    result.metrics["test"]["auc"]   # {"value": ..., "ci_low": ..., "ci_high": ...}
"""

from importlib.metadata import version

from medtransfer.backbones import create_backbone, describe_groups
from medtransfer.config import RunConfig
from medtransfer.data import Augmentation, open_source, read_source
from medtransfer.delivery.export import export_model
from medtransfer.delivery.predict import predict
from medtransfer.errors import (
    ConfigError,
    DataError,
    MedTransferError,
    TrainingDiverged,
)
from medtransfer.model import load_model
from medtransfer.run import RunResult, evaluate, train
from medtransfer.strategies import Strategy, layerwise_strategies, parse_strategy
from medtransfer.tasks import (
    HeadFactory,
    Metric,
    RaggedTargets,
    ReportSection,
    Scorer,
    TargetCodec,
    Task,
    TaskInputs,
    TaskOptions,
    TaskParts,
    TaskWriter,
    register_task,
)
from medtransfer.training import TrainConfig

__version__ = version("medtransfer")

__all__ = [
    "Augmentation", "ConfigError", "DataError", "HeadFactory", "MedTransferError", "Metric", "RaggedTargets",
    "ReportSection", "RunConfig", "RunResult", "Scorer", "Strategy", "TargetCodec", "Task", "TaskInputs", "TaskOptions",
    "TaskParts", "TaskWriter", "TrainConfig", "TrainingDiverged", "create_backbone", "describe_groups",
    "evaluate", "export_model", "layerwise_strategies", "load_model", "open_source", "parse_strategy", "predict", "read_source",
    "register_task", "train",
]
