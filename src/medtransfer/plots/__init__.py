"""Figures (matplotlib, headless): PNG for pages, SVG for papers. Nothing here knows about tasks or studies."""

from medtransfer.plots.boxes import plot_boxes, plot_froc
from medtransfer.plots.figures import (
    Figure,
    percent,
    plot_metric_vs_depth,
    plot_metric_vs_fraction,
    plot_training_curve,
    plot_validation_curves,
    save_figure,
    strategy_colors,
)
from medtransfer.plots.overlays import MaskPrediction, OverlayImage, plot_overlays
from medtransfer.plots.reliability import plot_reliability
from medtransfer.plots.roc import RocRuns, plot_roc, roc_inputs
from medtransfer.plots.saliency import SaliencyImage, gradcam_maps, plot_saliency

__all__ = [
    "Figure", "MaskPrediction", "OverlayImage", "RocRuns", "SaliencyImage", "gradcam_maps", "percent",
    "plot_boxes", "plot_froc", "plot_metric_vs_depth", "plot_metric_vs_fraction", "plot_overlays", "plot_reliability",
    "plot_roc", "plot_saliency",
    "plot_training_curve", "plot_validation_curves", "roc_inputs", "save_figure", "strategy_colors",
]
