"""Detection figures: FROC curves (sensitivity against false positives per image) and test images with their true
and predicted boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtransfer.plots.figures import (
    CLASS_COLORS,
    RECOMMENDED_COLOR,
    SCRATCH_COLOR,
    TRUTH_COLOR,
    Figure,
    _label,
    percent,
    plain_text,
    plt,
    save_figure,
    strategy_colors,
)

#: boxes drawn on the example images: those the model scores at least this
SCORE_THRESHOLD = 0.5


def plot_froc(curves: list[tuple[str, np.ndarray, np.ndarray]], fraction: float, out_dir: Path, *,
              recommended: str | None = None, rates=(0.125, 0.25, 0.5, 1, 2, 4, 8)) -> Figure:
    """One FROC curve per ``(strategy, false positives per image, sensitivity)``, on a log rate axis."""
    name, title = "froc", f"FROC curves on the test split ({percent(fraction)} of the training data)"
    if not curves:
        return Figure(name, title, note="No test detections were recorded for these strategies.")
    fig, ax = plt.subplots(figsize=(6.0, 4.4), constrained_layout=True)
    colors = strategy_colors([c[0] for c in curves], recommended)
    for strategy, fp, sens in curves:
        shown = fp > 0
        ax.step(np.r_[rates[0] / 2, fp[shown]], np.r_[sens[~shown].max(initial=0), sens[shown]], where="post",
                color=colors[strategy], lw=2.2, ls="--" if strategy == "scratch" else "-",
                label=_label(strategy, recommended))
    ax.set_xscale("log", base=2)
    ax.set_xticks(rates, [f"{r:g}" for r in rates])
    ax.set(xlim=(rates[0] / 2, rates[-1] * 1.1), ylim=(-0.01, 1.01), xlabel="false positives per image",
           ylabel="sensitivity (true boxes found)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=9)
    png, svg = save_figure(fig, out_dir, name)
    return Figure(name, title, png=png, svg=svg, caption=(
        "Free-response ROC: the share of true boxes found against the number of false detections per test image, "
        "as the score threshold falls, for the first seed of each strategy. The CPM in the tables is the mean "
        "sensitivity at the marked rates (1/8 … 8)."))


def _draw(ax, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, *, dashed: bool, colour=None) -> None:
    from matplotlib.patches import Rectangle

    for (x1, y1, x2, y2), c in zip(boxes, labels):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ls="--" if dashed else "-",
                               edgecolor=colour or CLASS_COLORS[int(c) % len(CLASS_COLORS)]))


def plot_boxes(images: list[np.ndarray], truths: list[np.ndarray], predictions: list[tuple[str, list[dict]]],
               class_names: list[str], out_dir: Path, *, recommended: str | None = None,
               models_note: str = "") -> Figure:
    """One row per test image: its true boxes, then each model's boxes scored at least :data:`SCORE_THRESHOLD`."""
    from matplotlib.patches import Patch

    name, title = "boxes", "Detected boxes on test images"
    if not images:
        return Figure(name, title, note="The test split holds no images, so no boxes were drawn.")
    rows, cols, cell = len(images), 1 + len(predictions), 2.8
    fig, axes = plt.subplots(rows, cols, figsize=(max(cell * cols, 4.5), cell * rows + 0.7), squeeze=False,
                             constrained_layout=True)
    for i, (im, truth) in enumerate(zip(images, truths)):
        rgb = np.transpose(np.broadcast_to(im, (3, *im.shape[1:])), (1, 2, 0))
        truth = np.asarray(truth).reshape(-1, 5)
        for j in range(cols):
            ax = axes[i, j]
            ax.imshow(rgb)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                _draw(ax, rgb, truth[:, :4], truth[:, 4], dashed=False)
                ax.set_ylabel(f"image {i + 1}", fontsize=9)
                continue
            strategy, found = predictions[j - 1]
            d = found[i]
            keep = np.asarray(d["scores"]) >= SCORE_THRESHOLD
            _draw(ax, rgb, truth[:, :4], truth[:, 4], dashed=True, colour=TRUTH_COLOR)
            _draw(ax, rgb, np.asarray(d["boxes"])[keep], np.asarray(d["labels"])[keep], dashed=False)
            head = f"{_label(strategy, recommended)}\n" if i == 0 else ""
            ax.set_title(f"{head}{int(keep.sum())} boxes", fontsize=9,
                         color=RECOMMENDED_COLOR if strategy == recommended else SCRATCH_COLOR)
    axes[0, 0].set_title("true boxes", fontsize=9)
    handles = [Patch(edgecolor=CLASS_COLORS[c % len(CLASS_COLORS)], fill=False, label=plain_text(n))
               for c, n in enumerate(class_names)]
    handles.append(Patch(edgecolor=TRUTH_COLOR, fill=False, ls="--", label="true box (on the model panels)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    png, svg = save_figure(fig, out_dir, name)
    size = images[0].shape[-1]
    strategies = " and ".join(p[0] for p in predictions)
    caption = (f"{rows} test images, spread evenly through the test split and resized to {size} × {size} px as the "
               f"models saw them. Left: the true boxes, coloured by class; then the boxes that {strategies} scored "
               f"at least {SCORE_THRESHOLD:g}, coloured by predicted class, over the true boxes (dashed yellow). "
               f"{models_note}")
    return Figure(name, title, png=png, svg=svg, caption=caption.strip())
