"""Predicted masks over test images: the true mask, then each model's prediction, with each image's Dice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtransfer.plots.figures import (
    CLASS_COLORS,
    RECOMMENDED_COLOR,
    SCRATCH_COLOR,
    TRUTH_COLOR,
    Figure,
    _label,
    plain_text,
    plt,
    save_figure,
)


@dataclass
class OverlayImage:
    """A test image as the models saw it (``uint8`` C×S×S), its true mask (``uint8`` S×S) and where it came from."""

    image: np.ndarray
    mask: np.ndarray
    ref: str


@dataclass
class MaskPrediction:
    """A model's predicted masks (``uint8`` N×S×S) of the overlay images, and each image's Dice against the truth."""

    strategy: str
    masks: np.ndarray
    dice: np.ndarray


def _class_color(c: int) -> str:
    return CLASS_COLORS[(c - 1) % len(CLASS_COLORS)]


def _overlay(ax, image: np.ndarray, fill: np.ndarray, truth: np.ndarray, num_classes: int) -> None:
    """``image`` with the classes of ``fill`` tinted and the border of each true class drawn over it."""
    from matplotlib.colors import to_rgba

    ax.imshow(np.transpose(np.broadcast_to(image, (3, *image.shape[1:])), (1, 2, 0)))
    tint = np.zeros((*fill.shape, 4))
    for c in range(1, num_classes):
        tint[fill == c] = to_rgba(_class_color(c), 0.45)
        if (truth == c).any():
            ax.contour((truth == c).astype(float), levels=[0.5], colors=[TRUTH_COLOR], linewidths=1.3)
    ax.imshow(tint)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_overlays(images: list[OverlayImage], predictions: list[MaskPrediction], class_names: list[str],
                  out_dir: Path, *, recommended: str | None = None, models_note: str = "") -> Figure:
    """One row per test image: the true mask, then each model's predicted mask, with that image's Dice."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    name, title = "overlay", "Predicted masks on test images"
    if not images:
        return Figure(name, title, note="The test split holds no images, so no masks were drawn.")
    rows, cols, cell = len(images), 1 + len(predictions), 2.3
    fig, axes = plt.subplots(rows, cols, figsize=(max(cell * cols, 4.5), cell * rows + 0.7), squeeze=False,
                             constrained_layout=True)
    for i, im in enumerate(images):
        _overlay(axes[i, 0], im.image, im.mask, im.mask, len(class_names))
        axes[i, 0].set_ylabel(f"image {i + 1}", fontsize=9)
        for j, p in enumerate(predictions, start=1):
            _overlay(axes[i, j], im.image, p.masks[i], im.mask, len(class_names))
            head = f"{_label(p.strategy, recommended)}\n" if i == 0 else ""
            color = RECOMMENDED_COLOR if p.strategy == recommended else SCRATCH_COLOR
            axes[i, j].set_title(f"{head}Dice {p.dice[i]:.2f}", fontsize=9, color=color)
    axes[0, 0].set_title("true mask", fontsize=9)
    handles = [Patch(color=_class_color(c), alpha=0.6, label=plain_text(class_names[c]))
               for c in range(1, len(class_names))]
    handles.append(Line2D([], [], color=TRUTH_COLOR, lw=1.5, label="border of the true mask"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    png, svg = save_figure(fig, out_dir, name)
    strategies = " and ".join(p.strategy for p in predictions)
    size = images[0].mask.shape[-1]
    caption = (
        f"{rows} test images, spread evenly through the test split (in its order, not chosen by any model's score) "
        f"and resized to {size} × {size} px as the models saw them. Left: the true mask (tinted); then the mask "
        f"predicted by {strategies} (tinted). The yellow outline on every panel is the border of the true mask. "
        f"'Dice' is that image's Dice of the prediction against the true mask (mean over foreground classes; 1 when "
        f"both are empty). {models_note}")
    return Figure(name, title, png=png, svg=svg, caption=caption.strip(), image_refs=[im.ref for im in images],
                  image_order="top to bottom")
