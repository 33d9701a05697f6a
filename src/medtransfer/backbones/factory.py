"""One factory for backbones: a timm architecture by name, its initial weights, its layer groups and preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from medtransfer.backbones.groups import (
    LayerGroup,
    TimmHead,
    check_sequential,
    layer_groups,
)
from medtransfer.backbones.weights import BUNDLED, initialise
from medtransfer.errors import ConfigError, did_you_mean

DEFAULT_BACKBONE = "tf_efficientnet_lite0"


@dataclass
class Backbone:
    """A timm model cut into layer groups, with the classifier replaced for ``num_classes`` outputs."""

    name: str
    model: nn.Module
    groups: list[LayerGroup]
    head: TimmHead
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str
    weights_description: str
    pretrained_input_size: int
    extra: dict = field(default_factory=dict)

    @property
    def num_groups(self) -> int:
        return len(self.groups)


def available_backbones(pattern: str | None = None) -> list[str]:
    import timm

    return timm.list_models(pattern or "*")


def _check_name(name: str) -> None:
    import timm

    if not timm.is_model(name):
        raise ConfigError(
            f"unknown backbone {name!r}{did_you_mean(name, timm.list_models())}. "
            f"See 'medtransfer backbones list'; offline ImageNet weights exist for {', '.join(BUNDLED)}."
        )


def create_backbone(name: str = DEFAULT_BACKBONE, weights: str = "imagenet", num_classes: int = 2,
                    **model_options) -> Backbone:
    """Build ``name`` with ``weights`` ('imagenet', 'scratch' or a file path) and a new ``num_classes`` classifier.

    ``model_options`` go to ``timm.create_model`` (e.g. ``drop_rate``, ``drop_path_rate``).
    """
    import timm
    from timm.data import resolve_data_config

    _check_name(name)
    model = timm.create_model(name, pretrained=False, **model_options)
    head_key = model.pretrained_cfg.get("classifier", "classifier")
    described = initialise(model, name, weights, head_key)
    model.reset_classifier(num_classes)
    groups, head = layer_groups(model, head_key)
    check_sequential(model, groups)
    cfg = resolve_data_config({}, model=model)
    return Backbone(
        name=name,
        model=model,
        groups=groups,
        head=head,
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        weights=weights,
        weights_description=described,
        pretrained_input_size=int(cfg["input_size"][-1]),
    )


def describe_groups(name: str) -> list[tuple[str, int]]:
    """(group name, parameter count) for ``name``'s layer groups, shallow to deep, then the classifier."""
    b = create_backbone(name, weights="scratch", num_classes=2)
    rows = [(g.name, g.num_parameters()) for g in b.groups]
    rows.append(("head (new)", sum(p.numel() for p in b.head.parameters())))
    return rows

