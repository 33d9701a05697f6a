"""Figures, drawn with matplotlib (headless) and saved as PNG (for pages) and SVG (for papers).

Every function takes what it plots, writes ``<name>.png`` and ``<name>.svg`` into a folder and returns a
:class:`Figure` (paths and caption), or a :class:`Figure` with a ``note`` and no files when it cannot be drawn.
Nothing here knows about tasks or studies: a metric is passed as an object with ``name``, ``label``, ``chance``
and ``unit_interval`` (a :class:`~medtransfer.tasks.Metric`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, NullLocator

#: figure width in inches; at the saved resolution the PNG is about 990 px wide, shown at ≤ 900 px on the page
WIDTH = 9.0
DPI = 110
SCRATCH_COLOR = "0.15"
RECOMMENDED_COLOR = "#c0392b"
#: mask overlays: the true mask's outline, and the fill of each foreground class (class 1 first)
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


def plain_text(text) -> str:
    """A user's string (a class or data set name) that matplotlib shows as it is: a pair of '$' would start math
    text (and a malformed formula would fail the figure)."""
    return str(text).replace("$", r"\$")


def _label(strategy: str, recommended: str | None) -> str:
    return f"{strategy} (recommended)" if strategy == recommended else strategy


# -- the study metric's axis ---------------------------------------------------------------------------------------
def _metric_axis(ax, metric, values: list[float]) -> None:
    """A dotted line at the metric's chance level, if it has one, with limits that keep it in view; a metric in
    [0, 1] without one: 0 to 1; otherwise matplotlib's limits."""
    finite = [v for v in values if np.isfinite(v)]
    if metric.chance is not None:
        ax.axhline(metric.chance, color="0.6", ls=":", lw=1)
        low = min(finite) if finite else metric.chance
        ax.set_ylim(max(0.0, min(metric.chance, low) - 0.03), 1.01 if metric.unit_interval else None)
    elif metric.unit_interval:
        ax.set_ylim(-0.01, 1.01)


def _test_values(table: pd.DataFrame, metric) -> list[float]:
    """Every plotted test value and lower bound, for the axis limits."""
    return table[f"test_{metric.name}_low"].tolist() + table[f"test_{metric.name}"].tolist()


# -- 1. test metric against fine-tuning depth -----------------------------------------------------------------------
def plot_metric_vs_depth(table: pd.DataFrame, metric, order: list[str], recommended: str | None,
                         recommended_fraction: float | None, out_dir: Path, *, head: str = "head",
                         skipped: list[str] | None = None, rule: str = "best mean validation",
                         halving: bool = False) -> Figure:
    """Mean test metric (95 % CI band) per strategy, shallow to deep, one line per training fraction.

    ``metric`` is the study's; ``head`` names the new, always-trained part of the network; ``order`` the strategies
    shallow to deep, ``skipped`` among them those a layer-wise search did not train, or with ``halving`` those whose
    every trial successive halving stopped at a rung (hatched at their place); ``rule``: how the recommendation was
    chosen.
    """
    label, test = metric.label, f"test_{metric.name}"
    fig, ax = plt.subplots(figsize=(WIDTH, 4.4), constrained_layout=True)
    skipped = [s for s in skipped or [] if s in order]
    x = {s: i for i, s in enumerate(order)}
    for s in skipped:
        ax.axvspan(x[s] - 0.4, x[s] + 0.4, color="0.85", alpha=0.6, lw=0, hatch="//", fill=False)
    if skipped:
        ax.text(x[skipped[0]] - 0.4, 0.02, "stopped at a rung" if halving else "not trained (search stopped)",
                transform=ax.get_xaxis_transform(),
                fontsize=8, color="0.4")
    fractions = sorted(table.fraction.unique(), reverse=True)
    cmap = plt.get_cmap("viridis")
    for j, f in enumerate(fractions):
        # one value per depth, NaN where the depth has no result at this size: the line breaks there
        rows = table[table.fraction == f].set_index("strategy").reindex(order)
        xs = np.arange(len(order))
        color = cmap(0.85 * j / max(1, len(fractions) - 1))
        ax.plot(xs, rows[test], "o-", color=color, lw=2, ms=5, label=f"{percent(f)} of training data")
        ax.fill_between(xs, rows[f"{test}_low"], rows[f"{test}_high"], color=color, alpha=0.15, lw=0)
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
    name = f"{metric.name}_vs_depth"
    png, svg = save_figure(fig, out_dir, name)
    return Figure(name, f"Test {label} by fine-tuning depth", png=png, svg=svg, caption=(
        f"Mean test {label} over seeds for each strategy, from training from scratch (left) through training only the "
        f"new {head} (linear) and tuning the last K layer groups (tune:K) to tuning every layer (full); one line per "
        f"training-set size. Shaded bands: 95 % case-bootstrap confidence intervals. The star marks the recommended "
        f"strategy ({rule}, validation {label} at the largest training set)."
        + ((" Hatched: depths whose every trial successive halving stopped at a rung" if halving else
            " Hatched: depths the layer-wise search did not train") + "; a line breaks where its size has no result."
           if skipped else "")
        + (f" Dotted line: chance ({metric.chance:g})." if metric.chance is not None else "")))


# -- 2. test metric against training-set size -----------------------------------------------------------------------
def plot_metric_vs_fraction(table: pd.DataFrame, metric, order: list[str], recommended: str | None,
                            out_dir: Path) -> Figure:
    """Mean test metric per training fraction (log axis), one line per strategy; scratch and the recommendation bold."""
    label, test = metric.label, f"test_{metric.name}"
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
    name = f"{metric.name}_vs_fraction"
    png, svg = save_figure(fig, out_dir, name)
    return Figure(name, f"Test {label} by training-set size", png=png, svg=svg, caption=(
        f"Mean test {label} over seeds against the share of the training split used (logarithmic axis). Dashed black: "
        "training from scratch; red: the recommended strategy (both with 95 % case-bootstrap bands); thin lines: the "
        "other fine-tuning depths. A flatter line loses less when the training set shrinks."))


# -- 3. validation metric per epoch ---------------------------------------------------------------------------------
def plot_validation_curves(curves: pd.DataFrame, trials: pd.DataFrame, metric, order: list[str],
                           recommended: str | None, fraction: float, out_dir: Path) -> Figure:
    """Validation metric per epoch for each strategy at ``fraction``, the mean over seeds."""
    label, column = metric.label, f"val_{metric.name}"
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


# -- a run's training curve ---------------------------------------------------------------------------------------
def plot_training_curve(history: list[dict], path: Path, *, metric: str = "auc", label: str | None = None,
                        title: str = "") -> Path:
    """Train/val loss and the validation metric per epoch, the best epoch marked."""
    epochs = [h["epoch"] for h in history]
    score = [h[f"val_{metric}"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="val")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    ax2.plot(epochs, score, color="C2")
    if score:
        best = max(range(len(score)), key=lambda i: (score[i] if score[i] == score[i] else -1))
        ax2.axvline(epochs[best], color="0.6", ls="--", lw=1)
        ax2.annotate(f"best {score[best]:.3f} @ {epochs[best]}", (epochs[best], score[best]), textcoords="offset points",
                     xytext=(4, -12), fontsize=8)
    label = label or metric
    ax2.set(xlabel="epoch", ylabel=f"val {label}", title=f"validation {label}")
    if title:
        fig.suptitle(plain_text(title), fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
