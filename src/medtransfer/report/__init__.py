"""Reports: figures and pages built from finished runs and studies."""

from medtransfer.report.figures import plot_training_curve

__all__ = ["plot_training_curve"]
