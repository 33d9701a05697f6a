"""Reliability diagram: observed accuracy against predicted confidence, per confidence bin, before and after a
calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtransfer.plots.figures import RECOMMENDED_COLOR, SCRATCH_COLOR, Figure, plt, save_figure


def plot_reliability(curves: list[tuple[str, object]], out_dir: Path, *, name: str = "reliability",
                     what: str = "test split") -> Figure:
    """One line per ``(label, bins)`` (``bins``: :class:`~medtransfer.metrics.calibration.ReliabilityBins`), the
    diagonal for perfect calibration, and the share of cases per bin underneath."""
    title = f"Reliability on the {what}"
    if not curves:
        return Figure(name, title, note="No calibration was fitted.")
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.2, 5.8), sharex=True, constrained_layout=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="perfect calibration")
    colors = [SCRATCH_COLOR, RECOMMENDED_COLOR, "#2c7fb8", "#31a354"]
    width = 1.0 / max(len(curves[0][1].counts), 1) / (len(curves) + 0.5)
    for k, (label, bins) in enumerate(curves):
        centres = (bins.edges[:-1] + bins.edges[1:]) / 2
        full = bins.counts > 0
        ax.plot(bins.confidence[full], bins.accuracy[full], marker="o", ms=4, lw=1.8, color=colors[k % len(colors)],
                label=f"{label}: ECE {bins.ece:.3f}")
        hist.bar(centres + (k - (len(curves) - 1) / 2) * width, bins.counts / max(bins.counts.sum(), 1), width=width,
                 color=colors[k % len(colors)], alpha=0.7)
    ax.set(ylabel="observed accuracy", xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    hist.set(xlabel="predicted confidence", ylabel="share of cases")
    hist.grid(alpha=0.3)
    png, svg = save_figure(fig, out_dir, name)
    n = int(np.asarray(curves[0][1].counts).sum())
    return Figure(name, title, png=png, svg=svg, caption=(
        f"Observed accuracy against predicted confidence on the {what} ({n} cases in "
        f"{len(curves[0][1].counts)} equal-width bins; empty bins are left out), with the expected calibration error "
        f"(ECE: the case-weighted mean gap to the diagonal). Bars: the share of cases in each bin."))
