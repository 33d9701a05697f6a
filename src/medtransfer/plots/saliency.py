"""Grad-CAM heat maps of one or more models on the same test images."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtransfer.plots.figures import (
    RECOMMENDED_COLOR,
    SCRATCH_COLOR,
    WIDTH,
    Figure,
    plain_text,
    plt,
    save_figure,
)


@dataclass
class SaliencyImage:
    """One test image (resized to the model input, ``uint8`` 3×S×S), its true class and where it came from."""

    image: np.ndarray
    target: int
    class_name: str
    ref: str


def gradcam_maps(net, images: list[SaliencyImage], probabilities) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Grad-CAM maps (N×S×S in [0, 1]) for each image's true class at the last backbone group of ``net``.

    ``net`` is a :class:`~medtransfer.networks.TransferNet`; it is deep-copied into one plain differentiable
    sequence (the frozen prefix computes without gradients), so the saved model is never touched. Returns the
    maps, each image's predicted probability of its true class and the feature-map size the maps were made at.
    """
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    twin = copy.deepcopy(net).cpu()
    backbone = [*twin.prefix.layers, *twin.suffix.layers]
    model = torch.nn.Sequential(*backbone, twin.suffix.head).eval().requires_grad_(True)
    target_layer = backbone[-1]  # the last backbone group, wherever the strategy cut the network
    x = torch.as_tensor(np.stack([im.image for im in images])).float()
    shape: list[tuple[int, int]] = []
    hook = target_layer.register_forward_hook(lambda _m, _i, out: shape.append(tuple(out.shape[-2:])))
    with torch.no_grad():
        probs = probabilities(model(x)).numpy()
    hook.remove()
    with GradCAM(model=model, target_layers=[target_layer]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(im.target) for im in images])
    p_true = np.array([probs[i, im.target] for i, im in enumerate(images)])
    return maps, p_true, shape[0]


def plot_saliency(images: list[SaliencyImage], models: list[tuple[str, object]], probabilities: dict,
                  out_dir: Path, *, fraction_note: str = "") -> Figure:
    """Rows: the test images, then one Grad-CAM overlay row per model; columns: the images, grouped by class.

    ``models`` is ``[(strategy, TransferNet), …]`` and ``probabilities`` maps a strategy to its task's
    logits→probabilities function.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    name, title = "saliency", "Where the models look: Grad-CAM on test images"
    rgb = [np.transpose(im.image, (1, 2, 0)).astype(np.float32) / 255.0 for im in images]
    results = [(s, *gradcam_maps(net, images, probabilities[s])) for s, net in models]
    n = len(images)
    cell = min(2.0, WIDTH / n)
    fig, axes = plt.subplots(1 + len(results), n, figsize=(max(cell * n, 4.5), cell * (1 + len(results)) + 0.5),
                             squeeze=False, constrained_layout=True)
    for j, im in enumerate(images):
        axes[0, j].imshow(rgb[j])
        axes[0, j].set_title(f"{j + 1}. {plain_text(im.class_name)}", fontsize=9)
        for r, (strategy, maps, p_true, _shape) in enumerate(results, start=1):
            axes[r, j].imshow(show_cam_on_image(rgb[j], maps[j], use_rgb=True, image_weight=0.55))
            axes[r, j].set_title(f"p = {p_true[j]:.2f}", fontsize=8)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
        for spine in a.spines.values():
            spine.set_visible(False)
    axes[0, 0].set_ylabel("test image", fontsize=9)
    for r, (strategy, *_rest) in enumerate(results, start=1):
        axes[r, 0].set_ylabel(strategy, fontsize=9, color=SCRATCH_COLOR if strategy == "scratch" else RECOMMENDED_COLOR)
    png, svg = save_figure(fig, out_dir, name)
    grid = ", ".join(f"{s}: {h}×{w}" for s, _m, _p, (h, w) in results)
    cells = min(min(shape) for *_rest, shape in results)
    caption = (
        f"Grad-CAM heat maps (red: regions that raise the score of the image's true class most) at the last layer "
        f"group of each model, for {n} test images, up to two per class; the top row shows the images as the models "
        f"saw them. 'p' is the model's predicted probability of the true class. {fraction_note}The maps are computed "
        f"on a feature grid of {grid} cells and upsampled, so they are coarse; they show what a model relied on, "
        f"not where the finding is."
        + (" A 1×1 grid carries no location at all; a study with a larger input size gives usable maps." if cells == 1
           else " With so few cells the maps place things only roughly; a larger input size gives finer maps."
           if cells < 4 else ""))
    return Figure(name, title, png=png, svg=svg, caption=caption, image_refs=[im.ref for im in images])
