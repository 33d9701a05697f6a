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
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullLocator  # noqa: E402

#: figure width in inches; at the saved resolution the PNG is about 990 px wide, shown at ≤ 900 px on the page
WIDTH = 9.0
DPI = 110
SCRATCH_COLOR = "0.15"
RECOMMENDED_COLOR = "#c0392b"


@dataclass
class Figure:
    """One figure of the report: its files (or why there are none) and its caption."""

    name: str
    title: str
    caption: str = ""
    png: Path | None = None
    svg: Path | None = None
    note: str = ""  # why the figure (or part of it) is missing
    image_refs: list[str] = field(default_factory=list)  # heat maps: where each image came from, left to right


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


# -- 1. test AUC against fine-tuning depth --------------------------------------------------------------------------
def plot_auc_vs_depth(table: pd.DataFrame, order: list[str], recommended: str | None, recommended_fraction: float | None,
                      out_dir: Path) -> Figure:
    """Mean test AUC (95 % CI band) per strategy, shallow to deep, one line per training fraction."""
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), constrained_layout=True)
    x = {s: i for i, s in enumerate(order)}
    fractions = sorted(table.fraction.unique(), reverse=True)
    cmap = plt.get_cmap("viridis")
    for j, f in enumerate(fractions):
        rows = table[table.fraction == f].copy()
        rows["x"] = rows.strategy.map(x)
        rows = rows.sort_values("x")
        color = cmap(0.85 * j / max(1, len(fractions) - 1))
        ax.plot(rows.x, rows.test_auc, "o-", color=color, lw=2, ms=5, label=f"{percent(f)} of training data")
        ax.fill_between(rows.x, rows.test_auc_low, rows.test_auc_high, color=color, alpha=0.15, lw=0)
    if recommended in x:
        i = x[recommended]
        ax.axvspan(i - 0.35, i + 0.35, color=RECOMMENDED_COLOR, alpha=0.08, lw=0)
        at = table[(table.strategy == recommended) & (table.fraction == recommended_fraction)]
        if len(at):
            y = float(at.test_auc.iloc[0])
            ax.plot([i], [y], marker="*", ms=18, color=RECOMMENDED_COLOR, mec="white", zorder=6)
            ax.annotate("recommended", (i, y), xytext=(0, 12), textcoords="offset points", ha="center",
                        color=RECOMMENDED_COLOR, fontsize=9, fontweight="bold")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xticks(range(len(order)), order)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set(xlabel="fine-tuning depth (shallow → deep; scratch: no pre-training)", ylabel="test AUC (mean over seeds)")
    _auc_limits(ax, table.test_auc_low.tolist() + table.test_auc.tolist())
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=9, frameon=False)
    png, svg = save_figure(fig, out_dir, "auc_vs_depth")
    return Figure("auc_vs_depth", "Test AUC by fine-tuning depth", png=png, svg=svg, caption=(
        "Mean test AUC over seeds for each strategy, from training from scratch (left) through training only the new "
        "classifier (linear) and tuning the last K layer groups (tune:K) to tuning every layer (full); one line per "
        "training-set size. Shaded bands: 95 % case-bootstrap confidence intervals. The star marks the recommended "
        "strategy (best mean validation AUC at the largest training set). Dotted line: chance (0.5)."))


def _auc_limits(ax, values: list[float]) -> None:
    finite = [v for v in values if np.isfinite(v)]
    low = min(finite) if finite else 0.5
    ax.set_ylim(max(0.0, min(0.5, low) - 0.03), 1.01)


# -- 2. test AUC against training-set size --------------------------------------------------------------------------
def plot_auc_vs_fraction(table: pd.DataFrame, order: list[str], recommended: str | None, out_dir: Path) -> Figure:
    """Mean test AUC per training fraction (log axis), one line per strategy; scratch and the recommendation bold."""
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), constrained_layout=True)
    colors = strategy_colors(order, recommended)
    for s in order:
        rows = table[table.strategy == s].sort_values("fraction")
        style = _line_style(s, recommended)
        ax.plot(rows.fraction, rows.test_auc, marker="o", ms=4 if style["lw"] < 2 else 6, color=colors[s],
                label=_label(s, recommended), **style)
        if s == "scratch" or s == recommended:
            ax.fill_between(rows.fraction, rows.test_auc_low, rows.test_auc_high, color=colors[s], alpha=0.12, lw=0)
    fractions = sorted(table.fraction.unique())
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(fractions, [percent(f) for f in fractions])
    if len(fractions) == 1:
        ax.set_xlim(fractions[0] / 1.5, fractions[0] * 1.5)
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set(xlabel="share of the training split used (log scale)", ylabel="test AUC (mean over seeds)")
    _auc_limits(ax, table.test_auc_low.tolist() + table.test_auc.tolist())
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    png, svg = save_figure(fig, out_dir, "auc_vs_fraction")
    return Figure("auc_vs_fraction", "Test AUC by training-set size", png=png, svg=svg, caption=(
        "Mean test AUC over seeds against the share of the training split used (logarithmic axis). Dashed black: "
        "training from scratch; red: the recommended strategy (both with 95 % case-bootstrap bands); thin lines: the "
        "other fine-tuning depths. A flatter line loses less when the training set shrinks."))


# -- 3. validation AUC per epoch ------------------------------------------------------------------------------------
def plot_validation_curves(curves: pd.DataFrame, trials: pd.DataFrame, order: list[str], recommended: str | None,
                           fraction: float, out_dir: Path) -> Figure:
    """Validation AUC per epoch for each strategy at ``fraction``, the mean over seeds."""
    name, title = "validation_curves", f"Validation AUC during training ({percent(fraction)} of the training data)"
    done = trials[(trials.status == "done") & (trials.fraction == fraction)]
    if curves.empty or "val_auc" not in curves or done.empty:
        return Figure(name, title, note="No training curves were recorded at this training-set size.")
    merged = curves.merge(done[["id", "strategy", "seed"]], left_on="trial_id", right_on="id")
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), constrained_layout=True)
    colors = strategy_colors(order, recommended)
    for s in order:
        per_epoch = merged[merged.strategy == s].groupby("epoch").val_auc.mean()
        if per_epoch.empty:
            continue
        ax.plot(per_epoch.index, per_epoch.values, color=colors[s], label=_label(s, recommended),
                **_line_style(s, recommended))
    ax.set(xlabel="epoch", ylabel="validation AUC (mean over seeds)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    png, svg = save_figure(fig, out_dir, name)
    seeds = done.seed.nunique()
    return Figure(name, title, png=png, svg=svg, caption=(
        f"Validation AUC after each epoch for every strategy trained on {percent(fraction)} of the training split, "
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
