"""The study report's figures, drawn with matplotlib (headless) and saved as PNG (for the page) and SVG (for papers).

Every function takes what it plots, writes ``<name>.png`` and ``<name>.svg`` into a folder and returns a
:class:`Figure` (paths and caption), or a :class:`Figure` with a ``note`` and no files when it cannot be drawn.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, NullLocator

from medtransfer.study.summary import metric_label

#: figure width in inches; at the saved resolution the PNG is about 990 px wide, shown at ≤ 900 px on the page
WIDTH = 9.0
DPI = 110
SCRATCH_COLOR = "0.15"
RECOMMENDED_COLOR = "#c0392b"
#: segmentation overlays: the true mask's outline, and the fill of each foreground class (class 1 first)
TRUTH_COLOR = "#ffd400"
CLASS_COLORS = ("#00b4ff", "#ff7f0e", "#2ca02c", "#e377c2", "#9467bd", "#17becf", "#8c564b", "#bcbd22")


@dataclass
class Figure:
    """One figure of the report: its files (or why there are none) and its caption."""

    name: str
    title: str
    caption: str = ""
    png: Path | None = None
    svg: Path | None = None
    note: str = ""  # why the figure (or part of it) is missing
    image_refs: list[str] = field(default_factory=list)  # the images shown: where each came from, in image_order
    image_order: str = "left to right"


def save_figure(fig, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``fig`` as ``name.png`` and ``name.svg`` in ``out_dir`` and close it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return png, svg


def percent(fraction: float) -> str:
    """0.25 → '25 %'; 0.125 → '12.5 %'."""
    return f"{fraction * 100:.3g} %"


def strategy_colors(strategies: list[str], recommended: str | None) -> dict[str, str]:
    """Scratch dark, the recommended strategy red, the others from a qualitative palette."""
    palette = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i not in (3, 7)]  # no red, no gray
    colors, i = {}, 0
    for s in strategies:
        if s == "scratch":
            colors[s] = SCRATCH_COLOR
        elif s == recommended:
            colors[s] = RECOMMENDED_COLOR
        else:
            colors[s] = palette[i % len(palette)]
            i += 1
    return colors


def _line_style(strategy: str, recommended: str | None) -> dict:
    """Scratch and the recommended strategy stand out; the other depths are thinner."""
    if strategy == "scratch":
        return {"lw": 2.4, "ls": "--", "alpha": 1.0, "zorder": 4}
    if strategy == recommended:
        return {"lw": 2.6, "ls": "-", "alpha": 1.0, "zorder": 5}
    return {"lw": 1.2, "ls": "-", "alpha": 0.75, "zorder": 3}


def _label(strategy: str, recommended: str | None) -> str:
    return f"{strategy} (recommended)" if strategy == recommended else strategy


# -- the study metric's axis ---------------------------------------------------------------------------------------
def _metric_axis(ax, metric: str, values: list[float]) -> None:
    """AUC: a dotted chance line at 0.5 and limits that keep it in view; Dice (no chance level): 0 to 1."""
    if metric != "auc":
        ax.set_ylim(-0.01, 1.01)
        return
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    finite = [v for v in values if np.isfinite(v)]
    low = min(finite) if finite else 0.5
    ax.set_ylim(max(0.0, min(0.5, low) - 0.03), 1.01)


def _test_values(table: pd.DataFrame, metric: str) -> list[float]:
    """Every plotted test value and lower bound, for the axis limits."""
    return table[f"test_{metric}_low"].tolist() + table[f"test_{metric}"].tolist()


# -- 1. test metric against fine-tuning depth -----------------------------------------------------------------------
def plot_metric_vs_depth(table: pd.DataFrame, metric: str, order: list[str], recommended: str | None,
                         recommended_fraction: float | None, out_dir: Path, *, head: str = "classifier") -> Figure:
    """Mean test metric (95 % CI band) per strategy, shallow to deep, one line per training fraction.

    ``metric`` is the summary's (``auc`` or ``dice``); ``head`` names the new, always-trained part of the network.
    """
    label, test = metric_label(metric), f"test_{metric}"
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), constrained_layout=True)
    x = {s: i for i, s in enumerate(order)}
    fractions = sorted(table.fraction.unique(), reverse=True)
    cmap = plt.get_cmap("viridis")
    for j, f in enumerate(fractions):
        rows = table[table.fraction == f].copy()
        rows["x"] = rows.strategy.map(x)
        rows = rows.sort_values("x")
        color = cmap(0.85 * j / max(1, len(fractions) - 1))
        ax.plot(rows.x, rows[test], "o-", color=color, lw=2, ms=5, label=f"{percent(f)} of training data")
        ax.fill_between(rows.x, rows[f"{test}_low"], rows[f"{test}_high"], color=color, alpha=0.15, lw=0)
    if recommended in x:
        i = x[recommended]
        ax.axvspan(i - 0.35, i + 0.35, color=RECOMMENDED_COLOR, alpha=0.08, lw=0)
        at = table[(table.strategy == recommended) & (table.fraction == recommended_fraction)]
        if len(at):
            y = float(at[test].iloc[0])
            ax.plot([i], [y], marker="*", ms=18, color=RECOMMENDED_COLOR, mec="white", zorder=6)
            ax.annotate("recommended", (i, y), xytext=(0, 12), textcoords="offset points", ha="center",
                        color=RECOMMENDED_COLOR, fontsize=9, fontweight="bold")
    _metric_axis(ax, metric, _test_values(table, metric))
    ax.set_xticks(range(len(order)), order)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set(xlabel="fine-tuning depth (shallow → deep; scratch: no pre-training)",
           ylabel=f"test {label} (mean over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=9, frameon=False)
    name = f"{metric}_vs_depth"
    png, svg = save_figure(fig, out_dir, name)
    return Figure(name, f"Test {label} by fine-tuning depth", png=png, svg=svg, caption=(
        f"Mean test {label} over seeds for each strategy, from training from scratch (left) through training only the "
        f"new {head} (linear) and tuning the last K layer groups (tune:K) to tuning every layer (full); one line per "
        f"training-set size. Shaded bands: 95 % case-bootstrap confidence intervals. The star marks the recommended "
        f"strategy (best mean validation {label} at the largest training set)."
        + (" Dotted line: chance (0.5)." if metric == "auc" else "")))


# -- 2. test metric against training-set size -----------------------------------------------------------------------
def plot_metric_vs_fraction(table: pd.DataFrame, metric: str, order: list[str], recommended: str | None,
                            out_dir: Path) -> Figure:
    """Mean test metric per training fraction (log axis), one line per strategy; scratch and the recommendation bold."""
    label, test = metric_label(metric), f"test_{metric}"
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), constrained_layout=True)
    colors = strategy_colors(order, recommended)
    for s in order:
        rows = table[table.strategy == s].sort_values("fraction")
        style = _line_style(s, recommended)
        ax.plot(rows.fraction, rows[test], marker="o", ms=4 if style["lw"] < 2 else 6, color=colors[s],
                label=_label(s, recommended), **style)
        if s == "scratch" or s == recommended:
            ax.fill_between(rows.fraction, rows[f"{test}_low"], rows[f"{test}_high"], color=colors[s], alpha=0.12,
                            lw=0)
    fractions = sorted(table.fraction.unique())
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(fractions, [percent(f) for f in fractions])
    if len(fractions) == 1:
        ax.set_xlim(fractions[0] / 1.5, fractions[0] * 1.5)
    _metric_axis(ax, metric, _test_values(table, metric))
    ax.set(xlabel="share of the training split used (log scale)", ylabel=f"test {label} (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    name = f"{metric}_vs_fraction"
    png, svg = save_figure(fig, out_dir, name)
    return Figure(name, f"Test {label} by training-set size", png=png, svg=svg, caption=(
        f"Mean test {label} over seeds against the share of the training split used (logarithmic axis). Dashed black: "
        "training from scratch; red: the recommended strategy (both with 95 % case-bootstrap bands); thin lines: the "
        "other fine-tuning depths. A flatter line loses less when the training set shrinks."))


# -- 3. validation metric per epoch ---------------------------------------------------------------------------------
def plot_validation_curves(curves: pd.DataFrame, trials: pd.DataFrame, metric: str, order: list[str],
                           recommended: str | None, fraction: float, out_dir: Path) -> Figure:
    """Validation metric per epoch for each strategy at ``fraction``, the mean over seeds."""
    label, column = metric_label(metric), f"val_{metric}"
    name, title = "validation_curves", f"Validation {label} during training ({percent(fraction)} of the training data)"
    done = trials[(trials.status == "done") & (trials.fraction == fraction)]
    if curves.empty or column not in curves or done.empty:
        return Figure(name, title, note="No training curves were recorded at this training-set size.")
    merged = curves.merge(done[["id", "strategy", "seed"]], left_on="trial_id", right_on="id")
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), constrained_layout=True)
    colors = strategy_colors(order, recommended)
    for s in order:
        per_epoch = merged[merged.strategy == s].groupby("epoch")[column].mean()
        if per_epoch.empty:
            continue
        ax.plot(per_epoch.index, per_epoch.values, color=colors[s], label=_label(s, recommended),
                **_line_style(s, recommended))
    ax.set(xlabel="epoch", ylabel=f"validation {label} (mean over seeds)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    png, svg = save_figure(fig, out_dir, name)
    seeds = done.seed.nunique()
    return Figure(name, title, png=png, svg=svg, caption=(
        f"Validation {label} after each epoch for every strategy trained on {percent(fraction)} of the training split, "
        f"averaged over {seeds} seed{'s' if seeds != 1 else ''} (a seed that stopped early no longer contributes to "
        f"later epochs). The model kept for each trial is the one from its best validation epoch."))


# -- 4. ROC curves --------------------------------------------------------------------------------------------------
@dataclass
class RocRuns:
    """A strategy's test predictions, one entry per seed, on the same test cases."""

    strategy: str
    targets: np.ndarray
    probs: list[np.ndarray]


def roc_inputs(targets: np.ndarray, probs: np.ndarray, label_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 truth, score) for one ROC curve: binary → class 1; multi-class/multi-label → micro-average one-vs-rest."""
    if label_kind == "binary":
        return (np.asarray(targets) == 1).astype(int), probs[:, 1]
    if label_kind == "multiclass":
        onehot = np.eye(probs.shape[1], dtype=int)[np.asarray(targets)]
        return onehot.ravel(), probs.ravel()
    return np.asarray(targets).astype(int).ravel(), probs.ravel()


def plot_roc(runs: list[RocRuns], label_kind: str, class_names: list[str], fraction: float, recommended: str | None,
             out_dir: Path) -> Figure:
    """Test-split ROC of each strategy's seed-averaged probabilities (bold) and of each seed (thin)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    name, title = "roc", f"ROC curves on the test split ({percent(fraction)} of the training data)"
    if not runs:
        return Figure(name, title, note="No test predictions were recorded for these strategies.")
    fig, ax = plt.subplots(figsize=(5.6, 5.0), constrained_layout=True)
    colors = strategy_colors([r.strategy for r in runs], recommended)
    for r in runs:
        if len(r.probs) > 1:  # each seed thin, under the seeds' average
            for p in r.probs:
                fpr, tpr, _ = roc_curve(*roc_inputs(r.targets, p, label_kind))
                ax.plot(fpr, tpr, color=colors[r.strategy], lw=0.8, alpha=0.35)
        y, score = roc_inputs(r.targets, np.mean(r.probs, axis=0), label_kind)
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, color=colors[r.strategy], lw=2.4, ls="--" if r.strategy == "scratch" else "-",
                label=f"{_label(r.strategy, recommended)}: AUC {roc_auc_score(y, score):.3f}")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="chance")
    ax.set(xlabel="false-positive rate (1 − specificity)", ylabel="true-positive rate (sensitivity)",
           xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    png, svg = save_figure(fig, out_dir, name)
    if label_kind == "binary":
        what = f"positive class: {class_names[1]!s}" if len(class_names) > 1 else "positive class 1"
    else:
        what = ("micro-averaged one-vs-rest over all classes (every image × class pair counts once; the AUC in the "
                "table is the macro average over classes, so the two can differ)")
    n_seeds = max(len(r.probs) for r in runs)
    lines = ("Lines: the single seed's test probabilities; the AUC is in the legend." if n_seeds == 1 else
             f"Bold lines: the probabilities averaged over the {n_seeds} seeds (a seed ensemble), with that curve's "
             f"AUC in the legend; thin lines: each seed on its own. The tables report the mean of the per-seed AUCs "
             f"instead.")
    return Figure(name, title, png=png, svg=svg, caption=(
        f"Receiver operating characteristic on the test split for models trained on {percent(fraction)} of the "
        f"training data; {what}. {lines}"))


# -- 5. saliency (Grad-CAM) -----------------------------------------------------------------------------------------
@dataclass
class SaliencyImage:
    """One test image (resized to the model input, ``uint8`` 3×S×S), its true class and where it came from."""

    image: np.ndarray
    target: int
    class_name: str
    ref: str


def pick_test_images(data, test_idx: np.ndarray, size: int, per_class: int = 2, limit: int = 8) -> list[SaliencyImage]:
    """Up to ``per_class`` test images of each class (``limit`` in all), the first ones in test-split order.

    Gray images are repeated to three channels, which the networks treat exactly like the one-channel image.
    """
    from medtransfer.data.transforms import resize_image

    targets = data.targets()
    chosen: list[SaliencyImage] = []
    for c, class_name in enumerate(data.class_names):
        positives = [i for i in test_idx if (targets[i] == c if targets.ndim == 1 else targets[i][c] == 1)]
        for i in positives[:per_class]:
            if len(chosen) < limit:
                sample = data.samples[int(i)]
                image = resize_image(sample.load(), size).expand(3, -1, -1).contiguous().numpy()
                chosen.append(SaliencyImage(image, c, class_name, sample.ref))
    return chosen


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
        axes[0, j].set_title(f"{j + 1}. {im.class_name}", fontsize=9)
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


# -- 6. segmentation: predicted masks over test images --------------------------------------------------------------
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


def pick_overlay_images(data, test_idx: np.ndarray, size: int, count: int = 5) -> list[OverlayImage]:
    """``count`` test images spread evenly through the test split, in its order (not chosen by any model's score)."""
    from medtransfer.data import load_images, load_masks

    n = len(test_idx)
    positions = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int)) if n else []
    idx = [int(test_idx[i]) for i in positions]
    images, masks = load_images(data, idx, size).numpy(), load_masks(data, idx, size).numpy()
    return [OverlayImage(im, m, data.samples[i].ref) for im, m, i in zip(images, masks, idx)]


def predict_masks(strategy: str, saved, images: list[OverlayImage]) -> MaskPrediction:
    """The predicted class mask of each image by a :class:`~medtransfer.saved_model.SavedModel` of a segmentation
    study, and its per-image Dice (the task's own case score, as in the study's tables)."""
    import torch

    x = torch.as_tensor(np.stack([im.image for im in images]))
    with torch.no_grad():
        masks = saved.task.probabilities(saved.net(x)).cpu().numpy()
    truth = np.stack([im.mask for im in images])
    return MaskPrediction(strategy, masks, np.asarray(saved.task.case_scores(masks, truth)))


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
    handles = [Patch(color=_class_color(c), alpha=0.6, label=class_names[c]) for c in range(1, len(class_names))]
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
