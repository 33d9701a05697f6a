"""Figures, drawn with matplotlib (headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_training_curve(history: list[dict], path: Path, *, metric: str = "auc", title: str = "") -> Path:
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
    from medtransfer.study.summary import metric_label

    label = metric_label(metric)
    ax2.set(xlabel="epoch", ylabel=f"val {label}", title=f"validation {label}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
