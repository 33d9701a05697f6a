"""A trained model on disk: ``model.safetensors`` + ``model.json``. Never a pickle.

The JSON holds everything needed to rebuild the network and preprocess its input: the task's spec (its
:meth:`~medtransfer.tasks.Task.config`), the backbone and the strategy. The tensors are those of the task's
:meth:`~medtransfer.tasks.HeadFactory.saved_weights`: timm's state_dict keys when the task adds only a classifier (then
``timm.create_model(backbone, num_classes=C)`` plus the safetensors file also works without medtransfer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from medtransfer.backbones import create_backbone
from medtransfer.compat import finished_before_the_mark, task_of_model
from medtransfer.errors import ConfigError, DataError
from medtransfer.files import atomic_write
from medtransfer.model.spec import check_spec
from medtransfer.networks import TransferNet
from medtransfer.strategies import parse_strategy
from medtransfer.tasks import Task

FORMAT = "medtransfer-model/1"


@dataclass
class SavedModel:
    net: TransferNet
    task: Task
    spec: dict

    @property
    def input_size(self) -> int:
        return int(self.spec["input_size"])


class DeliveredNet(torch.nn.Module):
    """The saved network followed by its task's delivered outputs: what ``predict`` computes, as one module."""

    def __init__(self, saved: SavedModel):
        super().__init__()
        self.net = saved.net
        self.task = saved.task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.writer.delivered_outputs(self.net(x))


def save_model(run_dir: Path, model: torch.nn.Module, spec: dict, *, complete: bool = False) -> None:
    """Store ``model``'s state (the timm model inside a network) and ``spec`` in ``run_dir``. ``complete`` marks
    the model of a finished run (a checkpoint saved during training is not)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(Path(run_dir) / "model.safetensors", save(state, metadata={"format": FORMAT}))
    atomic_write(Path(run_dir) / "model.json", json.dumps({"format": FORMAT, **spec, "complete": complete}, indent=2))


def mark_complete(run_dir: Path, updates: dict | None = None) -> None:
    """Mark the model saved in ``run_dir`` as the model of a finished run, with ``updates`` to its spec (what was
    fitted after the best epoch was saved: the calibration)."""
    meta = Path(run_dir) / "model.json"
    spec = json.loads(meta.read_text())
    atomic_write(meta, json.dumps({**spec, **(updates or {}), "complete": True}, indent=2))


def is_complete(run_dir: Path, spec: dict) -> bool:
    """Whether ``run_dir`` holds the model of a finished run (runs from before the mark: a metrics.json)."""
    return spec.get("complete") is True or finished_before_the_mark(run_dir, spec)


def load_model(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> SavedModel:
    """Rebuild the network saved in ``run_dir``; a folder that is incomplete, edited or damaged is refused with a
    :class:`~medtransfer.errors.DataError` that says which file and why."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    meta, weights = run_dir / "model.json", run_dir / "model.safetensors"
    for p in (meta, weights):
        if not p.is_file():
            raise DataError(f"{p}: missing; is {run_dir} a medtransfer run folder?")
    try:
        spec = json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{meta}: not valid JSON ({e})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise DataError(f"{meta}: format {spec.get('format') if isinstance(spec, dict) else None!r} is not {FORMAT!r}")
    if not is_complete(run_dir, spec):
        raise DataError(f"{run_dir}: holds a checkpoint of a run that did not finish (model.json is not marked "
                        f"complete); train again, or use a finished run folder")
    check_spec(spec, meta)  # types and ranges, before anything is built or written
    try:
        task = task_of_model(spec)
        backbone = create_backbone(spec["backbone"], weights="scratch", num_classes=len(spec["class_names"]))
        net = task.head.build_network(backbone, parse_strategy(spec["strategy"]))
    except (DataError, ConfigError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{meta}: cannot rebuild the model it describes ({e})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(f"{weights}: not a readable safetensors file ({e}); it may be truncated") from None
    try:
        net.weights_module.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{weights}: the weights do not fit the model model.json describes ({spec['backbone']}, "
                        f"{len(spec['class_names'])} classes, {spec['strategy']}): {first}") from None
    net.to(device).eval()
    return SavedModel(net=net, task=task, spec=spec)
