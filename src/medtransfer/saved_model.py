"""A trained model on disk: ``model.safetensors`` + ``model.json``. Never a pickle.

The JSON holds everything needed to rebuild the network and preprocess its input: the task's spec (its
:meth:`~medtransfer.tasks.Task.config`), the backbone and the strategy. The tensors are those of the task's
:meth:`~medtransfer.tasks.Task.saved_weights`: timm's state_dict keys when the task adds only a classifier (then
``timm.create_model(backbone, num_classes=C)`` plus the safetensors file also works without medtransfer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from medtransfer.backbones import create_backbone
from medtransfer.errors import DataError
from medtransfer.files import atomic_write
from medtransfer.networks import TransferNet
from medtransfer.strategies import parse_strategy
from medtransfer.tasks import Task, task_from_spec

FORMAT = "medtransfer-model/1"


@dataclass
class SavedModel:
    net: TransferNet
    task: Task
    spec: dict

    @property
    def input_size(self) -> int:
        return int(self.spec["input_size"])


def save_model(run_dir: Path, model: torch.nn.Module, spec: dict) -> None:
    """Store ``model``'s state (the timm model inside a network) and ``spec`` in ``run_dir``."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(Path(run_dir) / "model.safetensors", save(state, metadata={"format": FORMAT}))
    atomic_write(Path(run_dir) / "model.json", json.dumps({"format": FORMAT, **spec}, indent=2))


def load_model(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> SavedModel:
    """Rebuild the network saved in ``run_dir``."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    meta, weights = run_dir / "model.json", run_dir / "model.safetensors"
    for p in (meta, weights):
        if not p.is_file():
            raise DataError(f"{p}: missing; is {run_dir} a medtransfer run folder?")
    try:
        spec = json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{meta}: not valid JSON ({e})") from None
    if spec.get("format") != FORMAT:
        raise DataError(f"{meta}: format {spec.get('format')!r} is not {FORMAT!r}")
    try:
        task = task_from_spec(spec)
    except DataError as e:
        raise DataError(f"{meta}: {e}") from None
    backbone = create_backbone(spec["backbone"], weights="scratch", num_classes=len(spec["class_names"]))
    net = task.build_network(backbone, parse_strategy(spec["strategy"]))
    net.weights_module.load_state_dict(load_file(str(weights)))
    net.to(device).eval()
    return SavedModel(net=net, task=task, spec=spec)
