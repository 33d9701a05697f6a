"""Backbones: timm models, their initial weights, and their ordered layer groups."""

from medtransfer.backbones.factory import (
    DEFAULT_BACKBONE,
    Backbone,
    available_backbones,
    create_backbone,
    describe_groups,
)
from medtransfer.backbones.groups import LayerGroup
from medtransfer.backbones.weights import BUNDLED

__all__ = ["BUNDLED", "DEFAULT_BACKBONE", "Backbone", "LayerGroup", "available_backbones", "create_backbone", "describe_groups"]
