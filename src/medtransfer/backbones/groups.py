"""A timm model as an ordered list of layer groups, shallow to deep, followed by its head.

timm's ``group_matcher`` says which parameters belong to which group (stem, each stage, final conv merged into the
last stage). We turn that into modules that run one after another, so that a network can be cut at any group
boundary into a frozen prefix and a trainable suffix. The cut is verified against the model's own
``forward_features`` when the groups are built, so a model whose forward is not a plain sequence is refused instead of
silently computing something else.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from medtransfer.errors import ConfigError

SUPPORTED_HINT = "choose another backbone (EfficientNet/-Lite, ResNet, RegNet, DenseNet families work)."


@dataclass
class LayerGroup:
    """One group: its modules in forward order, and a readable name."""

    name: str
    module: nn.Sequential

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


class TimmHead(nn.Module):
    """Global pooling + classifier of a timm model, i.e. its ``forward_head``.

    ``forward_head`` runs on a shallow stand-in for the model that holds only the top-level children the head uses,
    so that copying the head (an EMA of a ``linear`` trial's classifier) does not copy the whole backbone.
    """

    def __init__(self, model: nn.Module, children: dict[str, nn.Module], top_level: list[str]):
        super().__init__()
        self.parts = nn.ModuleDict(children)  # registered so .to(device) and parameters() see them
        shell = copy.copy(model)
        shell.__dict__.update(_modules={n: model._modules[n] for n in top_level}, _parameters={}, _buffers={})
        self.__dict__["_model"] = shell  # unregistered: its modules are the ones in ``parts``

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._model.forward_head(x)


def _group_index(model: nn.Module, head_key: str) -> dict[str, int]:
    """Parameter name -> ordinal of its coarse group; the classifier's parameters are left out."""
    from timm.models import group_parameters

    try:
        matcher = model.group_matcher(coarse=True)
    except (AttributeError, NotImplementedError):
        raise ConfigError(f"{type(model).__name__} has no layer groups in timm; choose another backbone.") from None
    index: dict[str, int] = {}
    ordinal = 0
    for _, names in sorted(group_parameters(model, matcher).items()):
        names = [n for n in names if not (n == head_key or n.startswith(head_key + "."))]
        if names:
            index.update(dict.fromkeys(names, ordinal))
            ordinal += 1
    return index


def _assign(module: nn.Module, prefix: str, index: dict[str, int], out: list[tuple[str, nn.Module, int | None]]):
    """Flatten ``module``'s children into (name, module, group) in forward order, splitting containers across groups."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        groups = {index[f"{full}.{p}"] for p, _ in child.named_parameters() if f"{full}.{p}" in index}
        if len(groups) > 1:
            if not isinstance(child, nn.Sequential):
                raise ConfigError(f"cannot cut {full} ({type(child).__name__}) into layer groups; choose another backbone.")
            _assign(child, f"{full}.", index, out)
        else:
            out.append((full, child, groups.pop() if groups else None))


def layer_groups(model: nn.Module, head_key: str) -> tuple[list[LayerGroup], TimmHead]:
    """The model's coarse layer groups, shallow to deep, and its head (pooling + ``classifier``)."""
    index = _group_index(model, head_key)
    flat: list[tuple[str, nn.Module, int | None]] = []
    _assign(model, "", index, flat)
    last_feature = max(i for i, (_, _, g) in enumerate(flat) if g is not None)
    features, head = flat[: last_feature + 1], flat[last_feature + 1 :]
    members: dict[int, list[tuple[str, nn.Module]]] = {}
    current = 0
    for name, mod, g in features:
        if g is not None:
            if g < current:
                raise ConfigError(f"layer groups of {type(model).__name__} are not in forward order; choose another backbone.")
            current = g
        members.setdefault(current, []).append((name, mod))  # parameter-free modules join the group they follow
    groups = [
        LayerGroup(name="+".join(n for n, _ in mods), module=nn.Sequential(*[m for _, m in mods]))
        for _, mods in sorted(members.items())
    ]
    head_children = {n.replace(".", "_"): m for n, m, _ in head}
    if not any(n == head_key or n.startswith(head_key + ".") or head_key.startswith(n) for n, _, _ in head):
        raise ConfigError(
            f"{type(model).__name__}: its head {head_key!r} is not a separate module after the feature layers, "
            f"so it cannot be cut for layer-wise fine-tuning; {SUPPORTED_HINT}"
        )
    top_level = list(dict.fromkeys(n.split(".")[0] for n, _, _ in head))
    return groups, TimmHead(model, head_children, top_level)


@torch.no_grad()
def check_sequential(model: nn.Module, groups: list[LayerGroup]) -> None:
    """Refuse a model whose ``forward_features`` is not the groups run one after another."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    size = int(cfg.get("input_size", (3, 224, 224))[-1]) if cfg.get("fixed_input_size") else 64
    was_training = model.training
    model.eval()
    try:
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        ref = model.forward_features(x)
        y = x
        try:
            for g in groups:
                y = g.module(y)
        except Exception:  # a group that cannot take the previous group's output: not a sequence
            y = None
    finally:
        model.train(was_training)
    if y is None or y.shape != ref.shape or not torch.allclose(y, ref, rtol=1e-4, atol=1e-5):
        raise ConfigError(
            f"{type(model).__name__}: its forward is not a plain sequence of layer groups, so it cannot be cut for "
            f"layer-wise fine-tuning; {SUPPORTED_HINT}"
        )


def feature_groups(backbone, reductions: tuple[int, ...], *, purpose: str) -> tuple[list[LayerGroup], list[int]]:
    """The backbone's groups cut after its feature map at the deepest of ``reductions`` (timm's ``feature_info``),
    and the 0-based indices of the groups whose outputs are the feature maps at ``reductions``, shallow to deep.

    Layers after that map (EfficientNet's ``conv_head``) are dropped. A decoder (segmentation) or a feature pyramid
    (detection) reads the tapped maps; ``purpose`` names it in the error when the maps do not end layer groups."""
    info = getattr(backbone.model, "feature_info", None)
    modules = [f["module"] for f in info or [] if f.get("reduction") in reductions]
    if info is None or [f["reduction"] for f in info if f.get("reduction") in reductions] != list(reductions):
        raise ConfigError(f"{backbone.name}: no feature maps at reductions {reductions} for {purpose}; {SUPPORTED_HINT}")
    groups: list[LayerGroup] = []
    taps: list[int] = []
    for g in backbone.groups:
        names = g.name.split("+")
        keep = len(names)
        for j, n in enumerate(names):
            if n == modules[-1]:
                keep = j + 1
        names = names[:keep]
        groups.append(LayerGroup("+".join(names), nn.Sequential(*list(g.module)[:keep])))
        if names[-1] in modules:
            taps.append(len(groups) - 1)
        if names[-1] == modules[-1]:
            break
    if len(taps) != len(modules):
        raise ConfigError(
            f"{backbone.name}: its feature maps ({', '.join(modules)}) do not all end a layer group, so {purpose} "
            f"cannot be cut at group boundaries; {SUPPORTED_HINT}"
        )
    return groups, taps


@torch.no_grad()
def feature_channels(groups: list[LayerGroup], taps: list[int]) -> list[int]:
    """The channel counts of the tapped groups' outputs (probed on a small input, modes restored)."""
    y = torch.zeros(1, 3, 64, 64)
    chans = []
    was = [g.module.training for g in groups]
    for i, g in enumerate(groups):
        y = g.module.eval()(y)
        if i in taps:
            chans.append(int(y.shape[1]))
    for g, w in zip(groups, was):
        g.module.train(w)
    return chans
