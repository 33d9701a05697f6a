"""ROC curves of test-split probabilities, per strategy (each seed thin, the seeds' average bold)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtransfer.plots.figures import WIDTH, Figure, _label, percent, plt, save_figure, strategy_colors  # noqa: F401


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
